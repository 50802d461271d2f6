
“¡²ÃÔ~_Š›.?J[l
!
service.name
otelcol-contrib

service.version	
0.149.0
	host.name
edge-7
os.type
linux Çø*"StatusOK2


receivers:
  otlp:
r" 