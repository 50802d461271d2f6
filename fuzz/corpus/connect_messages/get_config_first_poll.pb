
web-01"
collector.oslinux