//! The OTTL functions the filter and transform processors register, with their parameters and the
//! checks their factories make when a config loads.
//!
//! The parameter lists are the `…Arguments` structs of contrib v0.149.0: `pkg/ottl/ottlfuncs/func_*.go`
//! (`StandardConverters` and `StandardFuncs` in `ottlfuncs/functions.go`),
//! `processor/transformprocessor/internal/{traces,metrics}/func_*.go` and
//! `internal/filter/filterottl/functions.go`. Which processor offers which function in which context
//! follows `filterottl.Standard<Context>Funcs` and the transform processor's
//! `internal/{logs,traces,metrics,common}/functions.go`. A literal XPath is compiled as the XML
//! functions' `validateXPath` does (`xpath`); the other literal checks are here or in `re2`, `grok`
//! and `timefmt`.

use super::grok;
use super::re2;
use super::timefmt;
use super::xpath;
use super::Context;

/// How `buildArgs` in `pkg/ottl/functions.go` turns an argument into a parameter of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ottl.Getter`: any value.
    Getter,
    String,
    StringLike,
    Int,
    IntLike,
    Float,
    FloatLike,
    Bool,
    BoolLike,
    /// `ottl.PMapGetter`.
    Map,
    /// `ottl.PSliceGetter`.
    Slice,
    ByteSliceLike,
    Time,
    Duration,
    /// `ottl.Setter` / `ottl.GetSetter`: a path.
    Setter,
    MapSetter,
    SliceSetter,
    /// Go `string`, `float64`, `int64`, `bool`: a literal of that type.
    LitString,
    LitFloat,
    LitInt,
    LitBool,
    LitStringList,
    LitFloatList,
    /// A list of getters of the inner kind.
    List(&'static Kind),
    /// `ottl.FunctionGetter`: the name of a function.
    Function,
}

#[derive(Debug)]
pub struct Param {
    /// The Go field name, which a named argument must match after `strcase.ToCamel`.
    pub name: &'static str,
    pub kind: Kind,
    pub optional: bool,
}

#[derive(Debug)]
pub struct Signature {
    pub name: &'static str,
    /// `None` for a factory without an arguments struct: its arguments are not even looked at.
    pub params: Option<&'static [Param]>,
}

/// Every function any of the processors registers, sorted by name (byte order).
static SIGNATURES: &[Signature] = &[
    Signature {
        name: "Base64Decode",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "Base64Encode",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Variant", kind: Kind::String, optional: true },
        ]),
    },
    Signature {
        name: "Bool",
        params: Some(&[Param { name: "Target", kind: Kind::BoolLike, optional: false }]),
    },
    Signature {
        name: "CommunityID",
        params: Some(&[
            Param { name: "SourceIP", kind: Kind::String, optional: false },
            Param { name: "SourcePort", kind: Kind::Int, optional: false },
            Param { name: "DestinationIP", kind: Kind::String, optional: false },
            Param { name: "DestinationPort", kind: Kind::Int, optional: false },
            Param { name: "Protocol", kind: Kind::String, optional: true },
            Param { name: "Seed", kind: Kind::Int, optional: true },
        ]),
    },
    Signature {
        name: "Concat",
        params: Some(&[
            Param { name: "Vals", kind: Kind::List(&Kind::StringLike), optional: false },
            Param { name: "Delimiter", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "ContainsValue",
        params: Some(&[
            Param { name: "Target", kind: Kind::Slice, optional: false },
            Param { name: "Item", kind: Kind::Getter, optional: false },
        ]),
    },
    Signature {
        name: "ConvertAttributesToElementsXML",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "XPath", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "ConvertCase",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "ToCase", kind: Kind::LitString, optional: false },
        ]),
    },
    Signature {
        name: "ConvertTextToElementsXML",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "XPath", kind: Kind::LitString, optional: true },
            Param { name: "ElementName", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature { name: "Day", params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]) },
    Signature {
        name: "Decode",
        params: Some(&[
            Param { name: "Target", kind: Kind::Getter, optional: false },
            Param { name: "Encoding", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "Double",
        params: Some(&[Param { name: "Target", kind: Kind::FloatLike, optional: false }]),
    },
    Signature {
        name: "Duration",
        params: Some(&[Param { name: "Duration", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "ExtractGrokPatterns",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Pattern", kind: Kind::String, optional: false },
            Param { name: "NamedCapturesOnly", kind: Kind::LitBool, optional: true },
            Param { name: "PatternDefinitions", kind: Kind::LitStringList, optional: true },
        ]),
    },
    Signature {
        name: "ExtractPatterns",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Pattern", kind: Kind::String, optional: false },
        ]),
    },
    Signature { name: "FNV", params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]) },
    Signature {
        name: "Format",
        params: Some(&[
            Param { name: "Format", kind: Kind::LitString, optional: false },
            Param { name: "Vals", kind: Kind::List(&Kind::Getter), optional: false },
        ]),
    },
    Signature {
        name: "FormatTime",
        params: Some(&[
            Param { name: "Time", kind: Kind::Time, optional: false },
            Param { name: "Format", kind: Kind::LitString, optional: false },
        ]),
    },
    Signature {
        name: "GetXML",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "XPath", kind: Kind::LitString, optional: false },
        ]),
    },
    Signature {
        name: "HasAttrKeyOnDatapoint",
        params: Some(&[Param { name: "Key", kind: Kind::LitString, optional: false }]),
    },
    Signature {
        name: "HasAttrOnDatapoint",
        params: Some(&[
            Param { name: "Key", kind: Kind::LitString, optional: false },
            Param { name: "ExpectedVal", kind: Kind::LitString, optional: false },
        ]),
    },
    Signature {
        name: "HasPrefix",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Prefix", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "HasSuffix",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Suffix", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "Hex",
        params: Some(&[Param { name: "Target", kind: Kind::ByteSliceLike, optional: false }]),
    },
    Signature { name: "Hour", params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]) },
    Signature {
        name: "Hours",
        params: Some(&[Param { name: "Duration", kind: Kind::Duration, optional: false }]),
    },
    Signature {
        name: "Index",
        params: Some(&[
            Param { name: "Target", kind: Kind::Getter, optional: false },
            Param { name: "Value", kind: Kind::Getter, optional: false },
        ]),
    },
    Signature {
        name: "InsertXML",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "XPath", kind: Kind::LitString, optional: false },
            Param { name: "SubDocument", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "Int",
        params: Some(&[Param { name: "Target", kind: Kind::IntLike, optional: false }]),
    },
    Signature {
        name: "IsBool",
        params: Some(&[Param { name: "Target", kind: Kind::Bool, optional: false }]),
    },
    Signature {
        name: "IsDouble",
        params: Some(&[Param { name: "Target", kind: Kind::Float, optional: false }]),
    },
    Signature {
        name: "IsInCIDR",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Networks", kind: Kind::List(&Kind::String), optional: false },
        ]),
    },
    Signature { name: "IsInt", params: Some(&[Param { name: "Target", kind: Kind::Int, optional: false }]) },
    Signature {
        name: "IsList",
        params: Some(&[Param { name: "Target", kind: Kind::Getter, optional: false }]),
    },
    Signature { name: "IsMap", params: Some(&[Param { name: "Target", kind: Kind::Map, optional: false }]) },
    Signature {
        name: "IsMatch",
        params: Some(&[
            Param { name: "Target", kind: Kind::StringLike, optional: false },
            Param { name: "Pattern", kind: Kind::String, optional: false },
        ]),
    },
    Signature { name: "IsRootSpan", params: None },
    Signature {
        name: "IsString",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "IsValidLuhn",
        params: Some(&[Param { name: "Target", kind: Kind::StringLike, optional: false }]),
    },
    Signature { name: "Keys", params: Some(&[Param { name: "Target", kind: Kind::Map, optional: false }]) },
    Signature { name: "Len", params: Some(&[Param { name: "Target", kind: Kind::Getter, optional: false }]) },
    Signature {
        name: "Log",
        params: Some(&[Param { name: "Target", kind: Kind::FloatLike, optional: false }]),
    },
    Signature { name: "MD5", params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]) },
    Signature {
        name: "Microseconds",
        params: Some(&[Param { name: "Duration", kind: Kind::Duration, optional: false }]),
    },
    Signature {
        name: "Milliseconds",
        params: Some(&[Param { name: "Duration", kind: Kind::Duration, optional: false }]),
    },
    Signature { name: "Minute", params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]) },
    Signature {
        name: "Minutes",
        params: Some(&[Param { name: "Duration", kind: Kind::Duration, optional: false }]),
    },
    Signature { name: "Month", params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]) },
    Signature {
        name: "Murmur3Hash",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "Murmur3Hash128",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "Nanosecond",
        params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]),
    },
    Signature {
        name: "Nanoseconds",
        params: Some(&[Param { name: "Duration", kind: Kind::Duration, optional: false }]),
    },
    Signature { name: "Now", params: None },
    Signature {
        name: "ParseCSV",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Header", kind: Kind::String, optional: false },
            Param { name: "Delimiter", kind: Kind::LitString, optional: true },
            Param { name: "HeaderDelimiter", kind: Kind::LitString, optional: true },
            Param { name: "Mode", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "ParseInt",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Base", kind: Kind::Int, optional: false },
        ]),
    },
    Signature {
        name: "ParseJSON",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "ParseKeyValue",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Delimiter", kind: Kind::LitString, optional: true },
            Param { name: "PairDelimiter", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "ParseSeverity",
        params: Some(&[
            Param { name: "Target", kind: Kind::Getter, optional: false },
            Param { name: "Mapping", kind: Kind::Map, optional: false },
        ]),
    },
    Signature {
        name: "ParseSimplifiedXML",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "ParseXML",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "ProfileID",
        params: Some(&[Param { name: "Target", kind: Kind::ByteSliceLike, optional: false }]),
    },
    Signature {
        name: "RemoveXML",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "XPath", kind: Kind::LitString, optional: false },
        ]),
    },
    Signature {
        name: "SHA1",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "SHA256",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "SHA512",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature { name: "Second", params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]) },
    Signature {
        name: "Seconds",
        params: Some(&[Param { name: "Duration", kind: Kind::Duration, optional: false }]),
    },
    Signature {
        name: "SliceToMap",
        params: Some(&[
            Param { name: "Target", kind: Kind::Slice, optional: false },
            Param { name: "KeyPath", kind: Kind::LitStringList, optional: true },
            Param { name: "ValuePath", kind: Kind::LitStringList, optional: true },
        ]),
    },
    Signature {
        name: "Sort",
        params: Some(&[
            Param { name: "Target", kind: Kind::Getter, optional: false },
            Param { name: "Order", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "SpanID",
        params: Some(&[Param { name: "Target", kind: Kind::ByteSliceLike, optional: false }]),
    },
    Signature {
        name: "Split",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Delimiter", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "String",
        params: Some(&[Param { name: "Target", kind: Kind::StringLike, optional: false }]),
    },
    Signature {
        name: "Substring",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Start", kind: Kind::Int, optional: false },
            Param { name: "Length", kind: Kind::Int, optional: false },
        ]),
    },
    Signature {
        name: "Time",
        params: Some(&[
            Param { name: "Time", kind: Kind::String, optional: false },
            Param { name: "Format", kind: Kind::LitString, optional: false },
            Param { name: "Location", kind: Kind::LitString, optional: true },
            Param { name: "Locale", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "ToCamelCase",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "ToKeyValueString",
        params: Some(&[
            Param { name: "Target", kind: Kind::Map, optional: false },
            Param { name: "Delimiter", kind: Kind::LitString, optional: true },
            Param { name: "PairDelimiter", kind: Kind::LitString, optional: true },
            Param { name: "SortOutput", kind: Kind::LitBool, optional: true },
        ]),
    },
    Signature {
        name: "ToLowerCase",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "ToSnakeCase",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "ToUpperCase",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "TraceID",
        params: Some(&[Param { name: "Target", kind: Kind::ByteSliceLike, optional: false }]),
    },
    Signature {
        name: "Trim",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Replacement", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "TrimPrefix",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Prefix", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "TrimSuffix",
        params: Some(&[
            Param { name: "Target", kind: Kind::String, optional: false },
            Param { name: "Suffix", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "TruncateTime",
        params: Some(&[
            Param { name: "Time", kind: Kind::Time, optional: false },
            Param { name: "Duration", kind: Kind::Duration, optional: false },
        ]),
    },
    Signature { name: "URL", params: Some(&[Param { name: "URI", kind: Kind::String, optional: false }]) },
    Signature { name: "UUID", params: None },
    Signature { name: "UUIDv7", params: None },
    Signature {
        name: "Unix",
        params: Some(&[
            Param { name: "Seconds", kind: Kind::Int, optional: false },
            Param { name: "Nanoseconds", kind: Kind::Int, optional: true },
        ]),
    },
    Signature {
        name: "UnixMicro",
        params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]),
    },
    Signature {
        name: "UnixMilli",
        params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]),
    },
    Signature {
        name: "UnixNano",
        params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]),
    },
    Signature {
        name: "UnixSeconds",
        params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]),
    },
    Signature {
        name: "UserAgent",
        params: Some(&[Param { name: "UserAgent", kind: Kind::String, optional: false }]),
    },
    Signature { name: "Values", params: Some(&[Param { name: "Target", kind: Kind::Map, optional: false }]) },
    Signature { name: "Weekday", params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]) },
    Signature {
        name: "XXH128",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature {
        name: "XXH3",
        params: Some(&[Param { name: "Target", kind: Kind::String, optional: false }]),
    },
    Signature { name: "Year", params: Some(&[Param { name: "Time", kind: Kind::Time, optional: false }]) },
    Signature {
        name: "aggregate_on_attribute_value",
        params: Some(&[
            Param { name: "AggregationFunction", kind: Kind::LitString, optional: false },
            Param { name: "Attribute", kind: Kind::LitString, optional: false },
            Param { name: "Values", kind: Kind::LitStringList, optional: false },
            Param { name: "NewValue", kind: Kind::LitString, optional: false },
        ]),
    },
    Signature {
        name: "aggregate_on_attributes",
        params: Some(&[
            Param { name: "AggregationFunction", kind: Kind::LitString, optional: false },
            Param { name: "Attributes", kind: Kind::LitStringList, optional: true },
        ]),
    },
    Signature {
        name: "append",
        params: Some(&[
            Param { name: "Target", kind: Kind::Setter, optional: false },
            Param { name: "Value", kind: Kind::Getter, optional: true },
            Param { name: "Values", kind: Kind::List(&Kind::Getter), optional: true },
        ]),
    },
    Signature {
        name: "convert_exponential_histogram_to_histogram",
        params: Some(&[
            Param { name: "DistributionFn", kind: Kind::LitString, optional: false },
            Param { name: "ExplicitBounds", kind: Kind::LitFloatList, optional: false },
        ]),
    },
    Signature {
        name: "convert_gauge_to_sum",
        params: Some(&[
            Param { name: "StringAggTemp", kind: Kind::LitString, optional: false },
            Param { name: "Monotonic", kind: Kind::LitBool, optional: false },
        ]),
    },
    Signature { name: "convert_sum_to_gauge", params: None },
    Signature {
        name: "convert_summary_count_val_to_sum",
        params: Some(&[
            Param { name: "StringAggTemp", kind: Kind::LitString, optional: false },
            Param { name: "Monotonic", kind: Kind::LitBool, optional: false },
            Param { name: "Suffix", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "convert_summary_quantile_val_to_gauge",
        params: Some(&[
            Param { name: "AttributeKey", kind: Kind::LitString, optional: true },
            Param { name: "Suffix", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "convert_summary_sum_val_to_sum",
        params: Some(&[
            Param { name: "StringAggTemp", kind: Kind::LitString, optional: false },
            Param { name: "Monotonic", kind: Kind::LitBool, optional: false },
            Param { name: "Suffix", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "copy_metric",
        params: Some(&[
            Param { name: "Name", kind: Kind::String, optional: true },
            Param { name: "Description", kind: Kind::String, optional: true },
            Param { name: "Unit", kind: Kind::String, optional: true },
        ]),
    },
    Signature {
        name: "delete_index",
        params: Some(&[
            Param { name: "Target", kind: Kind::SliceSetter, optional: false },
            Param { name: "StartIndex", kind: Kind::Int, optional: false },
            Param { name: "EndIndex", kind: Kind::Int, optional: true },
        ]),
    },
    Signature {
        name: "delete_key",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Key", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "delete_matching_keys",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Pattern", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "extract_count_metric",
        params: Some(&[
            Param { name: "Monotonic", kind: Kind::LitBool, optional: false },
            Param { name: "Suffix", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "extract_sum_metric",
        params: Some(&[
            Param { name: "Monotonic", kind: Kind::LitBool, optional: false },
            Param { name: "Suffix", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "flatten",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Prefix", kind: Kind::LitString, optional: true },
            Param { name: "Depth", kind: Kind::LitInt, optional: true },
            Param { name: "ResolveConflicts", kind: Kind::LitBool, optional: true },
        ]),
    },
    Signature {
        name: "keep_keys",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Keys", kind: Kind::List(&Kind::String), optional: false },
        ]),
    },
    Signature {
        name: "keep_matching_keys",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Pattern", kind: Kind::String, optional: false },
        ]),
    },
    Signature {
        name: "limit",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Limit", kind: Kind::LitInt, optional: false },
            Param { name: "PriorityKeys", kind: Kind::LitStringList, optional: false },
        ]),
    },
    Signature {
        name: "merge_histogram_buckets",
        params: Some(&[Param { name: "Bound", kind: Kind::LitFloat, optional: false }]),
    },
    Signature {
        name: "merge_maps",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Source", kind: Kind::Map, optional: false },
            Param { name: "Strategy", kind: Kind::LitString, optional: false },
        ]),
    },
    Signature {
        name: "replace_all_matches",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Pattern", kind: Kind::String, optional: false },
            Param { name: "Replacement", kind: Kind::String, optional: false },
            Param { name: "Function", kind: Kind::Function, optional: true },
            Param { name: "ReplacementFormat", kind: Kind::String, optional: true },
        ]),
    },
    Signature {
        name: "replace_all_patterns",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Mode", kind: Kind::LitString, optional: false },
            Param { name: "RegexPattern", kind: Kind::String, optional: false },
            Param { name: "Replacement", kind: Kind::String, optional: false },
            Param { name: "Function", kind: Kind::Function, optional: true },
            Param { name: "ReplacementFormat", kind: Kind::String, optional: true },
        ]),
    },
    Signature {
        name: "replace_match",
        params: Some(&[
            Param { name: "Target", kind: Kind::Setter, optional: false },
            Param { name: "Pattern", kind: Kind::String, optional: false },
            Param { name: "Replacement", kind: Kind::String, optional: false },
            Param { name: "Function", kind: Kind::Function, optional: true },
            Param { name: "ReplacementFormat", kind: Kind::String, optional: true },
        ]),
    },
    Signature {
        name: "replace_pattern",
        params: Some(&[
            Param { name: "Target", kind: Kind::Setter, optional: false },
            Param { name: "RegexPattern", kind: Kind::String, optional: false },
            Param { name: "Replacement", kind: Kind::String, optional: false },
            Param { name: "Function", kind: Kind::Function, optional: true },
            Param { name: "ReplacementFormat", kind: Kind::String, optional: true },
        ]),
    },
    Signature {
        name: "scale_metric",
        params: Some(&[
            Param { name: "Multiplier", kind: Kind::LitFloat, optional: false },
            Param { name: "Unit", kind: Kind::String, optional: true },
        ]),
    },
    Signature {
        name: "set",
        params: Some(&[
            Param { name: "Target", kind: Kind::Setter, optional: false },
            Param { name: "Value", kind: Kind::Getter, optional: false },
        ]),
    },
    Signature {
        name: "set_semconv_span_name",
        params: Some(&[
            Param { name: "SemconvVersion", kind: Kind::LitString, optional: false },
            Param { name: "OriginalSpanNameAttribute", kind: Kind::LitString, optional: true },
        ]),
    },
    Signature {
        name: "truncate_all",
        params: Some(&[
            Param { name: "Target", kind: Kind::MapSetter, optional: false },
            Param { name: "Limit", kind: Kind::LitInt, optional: false },
            Param { name: "Utf8Safe", kind: Kind::LitBool, optional: true },
        ]),
    },
];

const EDITORS: &[&str] = &[
    "delete_key",
    "delete_matching_keys",
    "flatten",
    "keep_keys",
    "keep_matching_keys",
    "limit",
    "merge_maps",
    "replace_all_matches",
    "replace_all_patterns",
    "replace_match",
    "replace_pattern",
    "set",
    "truncate_all",
];

const TRANSFORM_SPAN: &[&str] = &["IsRootSpan", "set_semconv_span_name"];
const TRANSFORM_DATAPOINT: &[&str] =
    &["convert_summary_count_val_to_sum", "convert_summary_sum_val_to_sum", "merge_histogram_buckets"];
const TRANSFORM_METRIC: &[&str] = &[
    "aggregate_on_attribute_value",
    "aggregate_on_attributes",
    "convert_exponential_histogram_to_histogram",
    "convert_gauge_to_sum",
    "convert_sum_to_gauge",
    "convert_summary_quantile_val_to_gauge",
    "copy_metric",
    "extract_count_metric",
    "extract_sum_metric",
    "scale_metric",
];

/// Which processor's function table a text is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processor {
    Filter,
    Transform,
}

fn is_special(name: &str) -> bool {
    EDITORS.contains(&name)
        || TRANSFORM_SPAN.contains(&name)
        || TRANSFORM_DATAPOINT.contains(&name)
        || TRANSFORM_METRIC.contains(&name)
        || name == "HasAttrKeyOnDatapoint"
        || name == "HasAttrOnDatapoint"
}

/// The function `name` as `processor` registers it in `context`, if it does.
pub fn lookup(name: &str, processor: Processor, context: Context) -> Option<&'static Signature> {
    let signature = SIGNATURES
        .binary_search_by(|signature| signature.name.cmp(name))
        .ok()
        .map(|index| &SIGNATURES[index])?;
    let offered = if !is_special(name) {
        true
    } else {
        match processor {
            Processor::Filter => match name {
                "IsRootSpan" => context == Context::Span,
                "HasAttrKeyOnDatapoint" | "HasAttrOnDatapoint" => context == Context::Metric,
                _ => false,
            },
            Processor::Transform => {
                EDITORS.contains(&name)
                    || (context == Context::Span && TRANSFORM_SPAN.contains(&name))
                    || (context == Context::DataPoint && TRANSFORM_DATAPOINT.contains(&name))
                    || (context == Context::Metric && TRANSFORM_METRIC.contains(&name))
            }
        }
    };
    offered.then_some(signature)
}

/// A literal value as the parser evaluates it at load time (`newLiteral` in `pkg/ottl/expression.go`).
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Nil,
    Str(String),
    Bool(bool),
    Bytes(Vec<u8>),
    Int(i64),
    Float(f64),
    List(Vec<Lit>),
    Map,
    /// A list element known only per record (in a list bound to a parameter).
    Unknown,
}

/// What a parameter was bound to, for the factory checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Absent,
    /// Known only when a record is processed (a path, a converter, math).
    Dynamic,
    Lit(Lit),
}

impl Bound {
    fn str(&self) -> Option<&str> {
        match self {
            Bound::Lit(Lit::Str(value)) => Some(value),
            _ => None,
        }
    }

    fn int(&self) -> Option<i64> {
        match self {
            Bound::Lit(Lit::Int(value)) => Some(*value),
            _ => None,
        }
    }
}

fn one_of(function: &str, what: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), String> {
    match value {
        Some(value) if !allowed.contains(&value) => {
            Err(format!("{function}: invalid {what} {value:?}, must be one of {}", allowed.join(", ")))
        }
        _ => Ok(()),
    }
}

fn regex(function: &str, pattern: &Bound) -> Result<(), String> {
    match pattern.str() {
        Some(pattern) => re2::check_regex(pattern)
            .map_err(|error| format!("invalid regular expression in {function}: {}", error.message)),
        None => Ok(()),
    }
}

/// `validateXPath` in `ottlfuncs/func_remove_xml.go`: antchfx/xpath's `Compile`.
fn xpath_literal(expression: Option<&str>) -> Result<(), String> {
    match expression {
        Some(expression) => {
            xpath::check_xpath(expression).map_err(|error| format!("invalid XPath {expression:?}: {error}"))
        }
        None => Ok(()),
    }
}

/// The bytes `ByteSliceLikeGetter` makes of a literal, for the ID functions.
fn literal_bytes_len(lit: &Lit) -> Option<(usize, Option<&[u8]>)> {
    match lit {
        Lit::Nil => Some((0, None)),
        Lit::Bytes(bytes) => Some((bytes.len(), Some(bytes))),
        Lit::Str(text) => Some((text.len(), Some(text.as_bytes()))),
        Lit::Int(_) | Lit::Float(_) => Some((8, None)),
        Lit::Bool(_) => Some((1, None)),
        Lit::List(_) | Lit::Map | Lit::Unknown => None,
    }
}

fn id(function: &str, length: usize, target: &Bound) -> Result<(), String> {
    let Bound::Lit(lit) = target else { return Ok(()) };
    let Some((got, bytes)) = literal_bytes_len(lit) else { return Ok(()) };
    if got == length {
        return Ok(());
    }
    if got == length * 2 {
        // Hex-decoded; only a string or byte literal can hold the digits.
        let valid = bytes.is_some_and(|bytes| bytes.iter().all(u8::is_ascii_hexdigit));
        return if valid { Ok(()) } else { Err(format!("{function}: the ID is not valid hex")) };
    }
    Err(format!("{function}: an ID must be {length} bytes or {} hex digits, got {got} bytes", length * 2))
}

/// The checks `name`'s factory makes on its arguments when the config loads.
pub fn factory_check(name: &str, args: &[Bound]) -> Result<(), String> {
    let arg = |index: usize| args.get(index).unwrap_or(&Bound::Absent);
    match name {
        "IsMatch" | "delete_matching_keys" | "keep_matching_keys" | "ExtractPatterns" | "replace_pattern" => {
            regex(name, arg(1))
        }
        "replace_match" | "replace_all_matches" => match arg(1).str() {
            Some(pattern) => {
                check_glob(pattern).map_err(|error| format!("invalid glob pattern in {name}: {error}"))
            }
            None => Ok(()),
        },
        "replace_all_patterns" => {
            one_of(name, "mode", arg(1).str(), &["key", "value"])?;
            regex(name, arg(2))
        }
        "GetXML" | "InsertXML" | "RemoveXML" => xpath_literal(arg(1).str()),
        // An empty optional XPath stands for a default the factory does not compile ("/") or that
        // compiles ("//@*").
        "ConvertAttributesToElementsXML" | "ConvertTextToElementsXML" => {
            xpath_literal(arg(1).str().filter(|expression| !expression.is_empty()))
        }
        "ConvertCase" => one_of(name, "case", arg(1).str(), &["lower", "upper", "snake", "camel"]),
        "SpanID" => id(name, 8, arg(0)),
        "TraceID" | "ProfileID" => id(name, 16, arg(0)),
        "merge_maps" => one_of(name, "strategy", arg(2).str(), &["insert", "update", "upsert"]),
        "limit" => {
            let limit = arg(1).int().unwrap_or(0);
            let priority = match arg(2) {
                Bound::Lit(Lit::List(keys)) => keys.len() as i64,
                _ => 0,
            };
            if limit < 0 {
                Err(format!("limit: the limit {limit} cannot be negative"))
            } else if limit < priority {
                Err(format!(
                    "limit: the limit {limit} cannot be less than the number of priority keys {priority}"
                ))
            } else {
                Ok(())
            }
        }
        "truncate_all" => match arg(1).int() {
            Some(limit) if limit < 0 => Err(format!("truncate_all: the limit {limit} cannot be negative")),
            _ => Ok(()),
        },
        "flatten" => match arg(2).int() {
            Some(depth) if depth < 1 => Err(format!("flatten: the depth {depth} must be greater than 0")),
            _ => Ok(()),
        },
        "ParseCSV" => {
            for (index, what) in [(2, "delimiter"), (3, "header_delimiter")] {
                if let Some(value) = arg(index).str() {
                    if value.chars().count() != 1 {
                        return Err(format!("ParseCSV: the {what} must be a single character"));
                    }
                }
            }
            one_of(name, "mode", arg(4).str(), &["strict", "lazyQuotes", "ignoreQuotes"])
        }
        "IsInCIDR" => match arg(1) {
            Bound::Lit(Lit::List(networks)) => {
                for network in networks {
                    match network {
                        Lit::Str(network) => {
                            check_cidr(network).map_err(|error| format!("IsInCIDR: {error}"))?
                        }
                        _ => break,
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        },
        "ExtractGrokPatterns" => grok(arg(1), arg(2), arg(3)),
        "Sort" => one_of(name, "order", arg(1).str(), &["asc", "desc"]),
        "Time" | "FormatTime" => {
            match arg(1).str() {
                Some("") => return Err(format!("{name}: the format cannot be empty")),
                Some(format) => {
                    timefmt::check_strptime(format).map_err(|error| format!("{name}: {error}"))?
                }
                None => {}
            }
            if let Some(location) = arg(2).str().filter(|_| name == "Time") {
                timefmt::check_location(location).map_err(|error| format!("{name}: {error}"))?;
            }
            match arg(3).str().filter(|_| name == "Time") {
                Some(locale) => timefmt::check_locale(locale).map_err(|error| format!("{name}: {error}")),
                None => Ok(()),
            }
        }
        "ParseKeyValue" | "ToKeyValueString" => {
            let delimiter = arg(1).str();
            let pair = arg(2).str();
            if delimiter == Some("") {
                return Err(format!("{name}: the delimiter cannot be empty"));
            }
            if pair == Some("") {
                return Err(format!("{name}: the pair delimiter cannot be empty"));
            }
            let delimiter = if matches!(arg(1), Bound::Absent) { Some("=") } else { delimiter };
            let pair = if matches!(arg(2), Bound::Absent) { Some(" ") } else { pair };
            if delimiter.is_some() && delimiter == pair {
                return Err(format!("{name}: the pair delimiter cannot equal the delimiter"));
            }
            Ok(())
        }
        "append" => {
            if matches!(arg(1), Bound::Absent) && matches!(arg(2), Bound::Absent) {
                Err("append: one of value or values must be given".to_owned())
            } else {
                Ok(())
            }
        }
        "set_semconv_span_name" => {
            one_of(name, "semconv version", arg(0).str(), &["1.37.0"])?;
            match arg(1).str() {
                Some("") => Err(format!("{name}: originalSpanNameAttribute cannot be empty")),
                _ => Ok(()),
            }
        }
        "convert_gauge_to_sum" | "convert_summary_count_val_to_sum" | "convert_summary_sum_val_to_sum" => {
            one_of(name, "aggregation temporality", arg(0).str(), &["cumulative", "delta"])
        }
        "convert_exponential_histogram_to_histogram" => {
            one_of(name, "distribution", arg(0).str(), &["upper", "midpoint", "random", "uniform"])?;
            match arg(1) {
                Bound::Lit(Lit::List(bounds)) if bounds.is_empty() => {
                    Err(format!("{name}: explicit bounds cannot be empty"))
                }
                _ => Ok(()),
            }
        }
        "aggregate_on_attributes" | "aggregate_on_attribute_value" => one_of(
            name,
            "aggregation function",
            arg(0).str(),
            &["sum", "mean", "min", "max", "median", "count"],
        ),
        _ => Ok(()),
    }
}

/// Go's `net.ParseCIDR`: an IPv4 or IPv6 address without a zone, `/`, a decimal prefix length that
/// fits the address.
pub fn check_cidr(text: &str) -> Result<(), String> {
    let invalid = || format!("invalid CIDR address {text:?}");
    let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
    let bits = if address.contains(':') {
        address.parse::<std::net::Ipv6Addr>().map_err(|_| invalid())?;
        128
    } else {
        address.parse::<std::net::Ipv4Addr>().map_err(|_| invalid())?;
        32
    };
    if prefix.is_empty() || !prefix.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    match prefix.parse::<u32>() {
        Ok(length) if length <= bits => Ok(()),
        _ => Err(invalid()),
    }
}

/// `ExtractGrokPatterns`' load-time checks on a literal pattern: its references must name patterns of
/// the library, and with `named_captures_only` something must bring a named capture group. The
/// regular expression a reference expands to is not rebuilt (only a pattern without references is
/// checked as a regular expression); custom pattern definitions are checked for their form only.
fn grok(pattern: &Bound, named_captures_only: &Bound, definitions: &Bound) -> Result<(), String> {
    if let Bound::Lit(Lit::List(definitions)) = definitions {
        for definition in definitions {
            if let Lit::Str(definition) = definition {
                let Some((id, _)) = definition.split_once('=') else {
                    return Err(format!(
                        "ExtractGrokPatterns: the pattern definition {definition:?} is not NAME=pattern"
                    ));
                };
                if id.contains(':') {
                    return Err(format!("ExtractGrokPatterns: the pattern name {id:?} cannot contain ':'"));
                }
            }
        }
        if !definitions.is_empty() {
            return Ok(());
        }
    }
    let Some(pattern) = pattern.str() else { return Ok(()) };
    let references = grok::references(pattern);
    let mut named = pattern.contains("(?P<") || pattern.contains("(?<");
    for (name, has_field) in &references {
        match grok::pattern(name) {
            None => return Err(format!("ExtractGrokPatterns: unknown grok pattern {name:?}")),
            Some(brings_named) => named |= *has_field || brings_named,
        }
    }
    if references.is_empty() {
        regex("ExtractGrokPatterns", &Bound::Lit(Lit::Str(pattern.to_owned())))?;
    }
    if matches!(named_captures_only, Bound::Lit(Lit::Bool(true))) && !named {
        return Err("ExtractGrokPatterns: the pattern needs at least one named capture group".to_owned());
    }
    Ok(())
}

/// Whether `github.com/gobwas/glob` v0.2.3 compiles `pattern` (its lexer's character classes and the
/// parser's range rules; everything else in a glob is accepted). A NUL ends the pattern there, as the
/// lexer reads it as the end of input.
pub fn check_glob(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().take_while(|&c| c != '\0').collect();
    let mut index = 0;
    let mut terms = 0usize;
    while index < chars.len() {
        let character = chars[index];
        index += 1;
        match character {
            '{' => terms += 1,
            '}' if terms > 0 => terms -= 1,
            '[' => index = glob_class(&chars, index)?,
            '*' | '?' | ',' | '}' => {}
            _ => {
                // A text run: a backslash escapes the next character, a breaker ends the run.
                index -= 1;
                while index < chars.len() {
                    let current = chars[index];
                    if current == '\\' {
                        index += 2;
                        continue;
                    }
                    if matches!(current, '?' | '*' | '[' | '{') || (terms > 0 && matches!(current, '}' | ','))
                    {
                        break;
                    }
                    index += 1;
                }
                index = index.min(chars.len());
            }
        }
    }
    Ok(())
}

/// A glob character class after its `[`; returns the index after its `]`.
fn glob_class(chars: &[char], mut index: usize) -> Result<usize, String> {
    let mut negated_seen = false;
    let mut low: Option<char> = None;
    let mut high: Option<char> = None;
    let mut text = false;
    loop {
        let Some(&character) = chars.get(index) else {
            return Err("unexpected end of input in a character class".to_owned());
        };
        index += 1;
        if high.is_some() || text {
            if character != ']' {
                return Err("expected the character class to close".to_owned());
            }
            if high.is_some() == text {
                return Err("could not parse the character class".to_owned());
            }
            return Ok(index);
        }
        if let Some(low) = low {
            if character < low {
                return Err(format!("the range end {character:?} is before its start {low:?}"));
            }
            high = Some(character);
            continue;
        }
        if !negated_seen && character == '!' {
            negated_seen = true;
            continue;
        }
        if chars.get(index) == Some(&'-') {
            low = Some(character);
            index += 1;
            continue;
        }
        // A text run up to an unescaped `]`.
        index -= 1;
        let mut length = 0;
        while index < chars.len() {
            if chars[index] == '\\' {
                index += 1;
                if index < chars.len() {
                    length += 1;
                    index += 1;
                }
                continue;
            }
            if chars[index] == ']' {
                break;
            }
            length += 1;
            index += 1;
        }
        if length == 0 {
            // `[]` or `[!]`: the close comes with neither a range nor characters.
            if chars.get(index) == Some(&']') {
                return Err("could not parse the character class".to_owned());
            }
        }
        text = true;
        if length == 0 {
            return Err("unexpected end of input in a character class".to_owned());
        }
    }
}

/// `strcase.ToCamel` (iancoleman/strcase v0.3.0) on an argument name, which `buildArgs` matches with a
/// parameter's Go field name.
pub fn to_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut cap_next = true;
    let mut previous_is_cap = false;
    for (index, byte) in name.trim().bytes().enumerate() {
        let is_cap = byte.is_ascii_uppercase();
        let is_low = byte.is_ascii_lowercase();
        let mut value = byte;
        if cap_next {
            value = value.to_ascii_uppercase();
        } else if index == 0 || (previous_is_cap && is_cap) {
            value = value.to_ascii_lowercase();
        }
        previous_is_cap = is_cap;
        if is_cap || is_low {
            out.push(value as char);
            cap_next = false;
        } else if byte.is_ascii_digit() {
            out.push(value as char);
            cap_next = true;
        } else {
            cap_next = matches!(byte, b'_' | b' ' | b'-' | b'.');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        assert!(SIGNATURES.windows(2).all(|pair| pair[0].name < pair[1].name));
    }

    #[test]
    fn processors_offer_their_own_functions() {
        assert!(lookup("set", Processor::Transform, Context::Log).is_some());
        assert!(lookup("set", Processor::Filter, Context::Log).is_none());
        assert!(lookup("HasAttrOnDatapoint", Processor::Filter, Context::Metric).is_some());
        assert!(lookup("HasAttrOnDatapoint", Processor::Transform, Context::Metric).is_none());
        assert!(lookup("IsRootSpan", Processor::Filter, Context::SpanEvent).is_none());
        assert!(lookup("convert_sum_to_gauge", Processor::Transform, Context::DataPoint).is_none());
        assert!(lookup("IsMatch", Processor::Filter, Context::Resource).is_some());
    }

    #[test]
    fn glob_character_classes_follow_gobwas() {
        for ok in ["*", "[a]", "[a-z]", "[!a]", "{", "{}", "}", "[\\]]", "[-]", "[!-a]", "\0[", "[ab]c]", ""]
        {
            assert!(check_glob(ok).is_ok(), "{ok:?}");
        }
        for bad in ["[", "[]", "[a-]", "[z-a]", "[!]", "[a-b-c]", "[ab", "[--]", "[a-bc]"] {
            assert!(check_glob(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn argument_names_camel_case_like_strcase() {
        assert_eq!(to_camel("regex_pattern"), "RegexPattern");
        assert_eq!(to_camel("x_path"), "XPath");
        assert_eq!(to_camel("utf8_safe"), "Utf8Safe");
        assert_eq!(to_camel("sourceIP"), "SourceIp");
        assert_eq!(to_camel("ignoreCase"), "IgnoreCase");
    }
}
