
{"call":"members"}