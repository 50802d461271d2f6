
edge-7
envprod