//! The pattern library `ExtractGrokPatterns` loads (`grok.NewComplete()` of github.com/elastic/go-grok
//! v0.3.1, `patterns/*.go`): each pattern's name, and whether expanding it with named captures only
//! yields a named capture group (its definition, or one it references, names a field). Generated from
//! those files; the definitions themselves are not reproduced.

/// `(name, expands to a named capture group)`, sorted by name.
static PATTERNS: &[(&str, bool)] = &[
    ("BASE10NUM", false),
    ("BASE16FLOAT", false),
    ("BASE16NUM", false),
    ("BIND9", true),
    ("BIND9_CATEGORY", false),
    ("BIND9_DNSTYPE", false),
    ("BIND9_QUERYLOG", true),
    ("BIND9_QUERYLOGBASE", true),
    ("BIND9_TIMESTAMP", false),
    ("BOOL", false),
    ("BRO_BOOL", false),
    ("BRO_CONN", true),
    ("BRO_DATA", false),
    ("BRO_DNS", true),
    ("BRO_FILES", true),
    ("BRO_HTTP", true),
    ("CATALINA7_DATESTAMP", false),
    ("CATALINA7_LOG", true),
    ("CATALINA8_DATESTAMP", false),
    ("CATALINA8_LOG", true),
    ("CATALINALOG", true),
    ("CATALINA_DATESTAMP", false),
    ("CISCOFW104001", true),
    ("CISCOFW104002", true),
    ("CISCOFW104003", false),
    ("CISCOFW104004", false),
    ("CISCOFW105003", true),
    ("CISCOFW105004", true),
    ("CISCOFW105005", true),
    ("CISCOFW105008", true),
    ("CISCOFW105009", true),
    ("CISCOFW106001", true),
    ("CISCOFW106006_106007_106010", true),
    ("CISCOFW106014", true),
    ("CISCOFW106015", true),
    ("CISCOFW106021", true),
    ("CISCOFW106023", true),
    ("CISCOFW106100", true),
    ("CISCOFW106100_2_3", true),
    ("CISCOFW110002", true),
    ("CISCOFW302010", true),
    ("CISCOFW302013_302014_302015_302016", true),
    ("CISCOFW302020_302021", true),
    ("CISCOFW304001", true),
    ("CISCOFW305011", true),
    ("CISCOFW313001_313004_313008", true),
    ("CISCOFW313005", true),
    ("CISCOFW321001", true),
    ("CISCOFW402117", true),
    ("CISCOFW402119", true),
    ("CISCOFW419001", true),
    ("CISCOFW419002", true),
    ("CISCOFW500004", true),
    ("CISCOFW602303_602304", true),
    ("CISCOFW710001_710002_710003_710005_710006", true),
    ("CISCOFW713172", true),
    ("CISCOFW733100", true),
    ("CISCOMAC", false),
    ("CISCOTAG", false),
    ("CISCOTIMESTAMP", false),
    ("CISCO_ACTION", false),
    ("CISCO_DIRECTION", false),
    ("CISCO_DST_HOST_PORT_USER", true),
    ("CISCO_DST_IP_USER", true),
    ("CISCO_HITCOUNT_INTERVAL", true),
    ("CISCO_INTERVAL", false),
    ("CISCO_REASON", false),
    ("CISCO_SRC_HOST_PORT_USER", true),
    ("CISCO_SRC_IP_USER", true),
    ("CISCO_TAGGED_SYSLOG", true),
    ("CISCO_XLATE_TYPE", false),
    ("CLOUDFRONT_ACCESS_LOG", true),
    ("COMBINEDAPACHELOG", true),
    ("COMMONAPACHELOG", true),
    ("COMMONMAC", false),
    ("CRONLOG", true),
    ("CRON_ACTION", false),
    ("DATA", false),
    ("DATE", false),
    ("DATESTAMP", false),
    ("DATESTAMP_EVENTLOG", false),
    ("DATESTAMP_OTHER", false),
    ("DATESTAMP_RFC2822", false),
    ("DATESTAMP_RFC822", false),
    ("DATE_EU", false),
    ("DATE_US", false),
    ("DAY", false),
    ("ELB_ACCESS_LOG", true),
    ("ELB_REQUEST_LINE", true),
    ("ELB_URI", true),
    ("ELB_URIHOST", true),
    ("ELB_URIPATHPARAM", true),
    ("ELB_URIPATHQUERY", true),
    ("ELB_V1_HTTP_LOG", true),
    ("EMAILADDRESS", false),
    ("EMAILLOCALPART", false),
    ("EXIM", true),
    ("EXIM_DATE", false),
    ("EXIM_EXCLUDE_TERMS", false),
    ("EXIM_FLAGS", false),
    ("EXIM_HEADER_ID", true),
    ("EXIM_INTERFACE", true),
    ("EXIM_MESSAGE_ARRIVAL", true),
    ("EXIM_MSGID", false),
    ("EXIM_MSG_SIZE", true),
    ("EXIM_NAMED_FIELDS", true),
    ("EXIM_PID", true),
    ("EXIM_PROTOCOL", true),
    ("EXIM_QT", false),
    ("EXIM_QUOTED_CONTENT", false),
    ("EXIM_REMOTE_HOST", true),
    ("EXIM_SUBJECT", true),
    ("EXIM_UNKNOWN_FIELD", false),
    ("GREEDYDATA", false),
    ("HAPROXYCAPTUREDREQUESTHEADERS", true),
    ("HAPROXYCAPTUREDRESPONSEHEADERS", true),
    ("HAPROXYDATE", false),
    ("HAPROXYHTTP", true),
    ("HAPROXYHTTPBASE", true),
    ("HAPROXYHTTPREQUESTLINE", true),
    ("HAPROXYTCP", true),
    ("HAPROXYTIME", false),
    ("HAPROXYURI", true),
    ("HOSTNAME", false),
    ("HOSTPORT", false),
    ("HOUR", false),
    ("HTTPD20_ERRORLOG", true),
    ("HTTPD24_ERRORLOG", true),
    ("HTTPDATE", false),
    ("HTTPDERROR_DATE", false),
    ("HTTPDUSER", false),
    ("HTTPD_COMBINEDLOG", true),
    ("HTTPD_COMMONLOG", true),
    ("HTTPD_ERRORLOG", true),
    ("INT", false),
    ("IP", false),
    ("IPORHOST", false),
    ("IPTABLES", true),
    ("IPTABLES4_FRAG", false),
    ("IPTABLES4_PART", true),
    ("IPTABLES6_PART", true),
    ("IPTABLES_TCP_FLAGS", false),
    ("IPTABLES_TCP_PART", true),
    ("IPV4", false),
    ("IPV6", false),
    ("ISO8601_SECOND", false),
    ("ISO8601_TIMEZONE", false),
    ("JAVACLASS", false),
    ("JAVAFILE", false),
    ("JAVALOGMESSAGE", false),
    ("JAVAMETHOD", false),
    ("JAVASTACKTRACEPART", true),
    ("JAVATHREAD", false),
    ("LOGLEVEL", false),
    ("MAC", false),
    ("MAVEN_VERSION", false),
    ("MCOLLECTIVE", true),
    ("MCOLLECTIVEAUDIT", true),
    ("MINUTE", false),
    ("MONGO3_COMPONENT", false),
    ("MONGO3_LOG", true),
    ("MONGO3_SEVERITY", false),
    ("MONGO_LOG", true),
    ("MONGO_QUERY", true),
    ("MONGO_QUERY_CONTENT", false),
    ("MONGO_SLOWQUERY", true),
    ("MONGO_WORDDASH", false),
    ("MONTH", false),
    ("MONTHDAY", false),
    ("MONTHNUM", false),
    ("NETSCREENSESSIONLOG", true),
    ("NONNEGINT", false),
    ("NOTSPACE", false),
    ("NUMBER", false),
    ("PATH", false),
    ("POSINT", false),
    ("POSTGRESQL", true),
    ("PROG", false),
    ("QS", false),
    ("QUOTEDSTRING", false),
    ("RAILS3", true),
    ("RAILS3FOOT", true),
    ("RAILS3HEAD", true),
    ("RAILS3PROFILE", true),
    ("RCONTROLLER", true),
    ("REDISLOG", true),
    ("REDISMONLOG", true),
    ("REDISTIMESTAMP", false),
    ("RPROCESSING", true),
    ("RT_FLOW1", true),
    ("RT_FLOW2", true),
    ("RT_FLOW3", true),
    ("RT_FLOW_EVENT", false),
    ("RT_FLOW_TAG", false),
    ("RUBY_LOGGER", true),
    ("RUBY_LOGLEVEL", false),
    ("RUUID", false),
    ("S3_ACCESS_LOG", true),
    ("S3_REQUEST_LINE", true),
    ("SECOND", false),
    ("SFW2", true),
    ("SFW2_LOG_PREFIX", true),
    ("SHOREWALL", true),
    ("SPACE", false),
    ("SQUID3", true),
    ("SQUID3_STATUS", true),
    ("SYSLOG5424BASE", true),
    ("SYSLOG5424LINE", true),
    ("SYSLOG5424PRI", true),
    ("SYSLOG5424PRINTASCII", false),
    ("SYSLOG5424SD", false),
    ("SYSLOGBASE", true),
    ("SYSLOGBASE2", true),
    ("SYSLOGFACILITY", false),
    ("SYSLOGHOST", false),
    ("SYSLOGLINE", true),
    ("SYSLOGPAMSESSION", true),
    ("SYSLOGPROG", false),
    ("SYSLOGTIMESTAMP", false),
    ("TIME", false),
    ("TIMESTAMP_ISO8601", false),
    ("TOMCAT7_LOG", true),
    ("TOMCAT8_LOG", true),
    ("TOMCATLEGACY_DATESTAMP", false),
    ("TOMCATLEGACY_LOG", true),
    ("TOMCATLOG", true),
    ("TOMCAT_DATESTAMP", false),
    ("TTY", false),
    ("TZ", false),
    ("UNIXPATH", false),
    ("URI", false),
    ("URIHOST", false),
    ("URIPARAM", false),
    ("URIPATH", false),
    ("URIPATHPARAM", false),
    ("URIPROTO", false),
    ("URIQUERY", false),
    ("URN", false),
    ("USER", false),
    ("USERNAME", false),
    ("UUID", false),
    ("WINDOWSMAC", false),
    ("WINPATH", false),
    ("WORD", false),
    ("YEAR", false),
];

/// Whether the library defines `name`, and if so whether it brings a named capture group.
pub fn pattern(name: &str) -> Option<bool> {
    PATTERNS.binary_search_by(|(candidate, _)| candidate.cmp(&name)).ok().map(|index| PATTERNS[index].1)
}

/// The `%{NAME}`, `%{NAME:field}` and `%{NAME:field:type}` references in `pattern` (go-grok's
/// `%{(\w+(?::[\w+.]+(?::\w+)?)?)}`), as `(name, has_field)`.
pub fn references(pattern: &str) -> Vec<(&str, bool)> {
    let bytes = pattern.as_bytes();
    let word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let mut found = Vec::new();
    let mut index = 0;
    while let Some(offset) = pattern[index..].find("%{") {
        let start = index + offset + 2;
        index = start;
        let name_length = bytes[start..].iter().take_while(|&&byte| word(byte)).count();
        if name_length == 0 {
            continue;
        }
        let mut cursor = start + name_length;
        let mut has_field = false;
        if bytes.get(cursor) == Some(&b':') {
            let field = bytes[cursor + 1..]
                .iter()
                .take_while(|&&byte| word(byte) || byte == b'+' || byte == b'.')
                .count();
            if field > 0 {
                cursor += 1 + field;
                has_field = true;
                if bytes.get(cursor) == Some(&b':') {
                    let kind = bytes[cursor + 1..].iter().take_while(|&&byte| word(byte)).count();
                    if kind > 0 {
                        cursor += 1 + kind;
                    }
                }
            }
        }
        if bytes.get(cursor) == Some(&b'}') {
            found.push((&pattern[start..start + name_length], has_field));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_sorted_and_knows_its_patterns() {
        assert!(PATTERNS.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert_eq!(pattern("WORD"), Some(false));
        assert_eq!(pattern("NOPE"), None);
        assert_eq!(references("%{WORD:w} %{INT} %{WORD :x}"), [("WORD", true), ("INT", false)]);
    }
}
