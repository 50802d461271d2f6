
web-01