
web-01
teampaymentsweb-01"
collector.versionv1.12.0