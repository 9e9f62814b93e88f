//! The S3 signing the API needs and no SDK offers: browser POST policies
//! exactly as boto3's `generate_presigned_post` makes them (SigV4 or the
//! old SigV2 form, which the real server sends depending on its region) and
//! presigned part uploads (SigV4 query authentication).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// An access key pair. Debug output never shows the secret.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Which form a POST policy is signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PostSignature {
    #[default]
    V4,
    V2,
}

/// What a browser POST policy allows.
#[derive(Debug)]
pub struct PostPolicy<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub content_type: &'a str,
    pub max_size: u64,
    pub expires_in: u64,
    pub now: jiff::Timestamp,
    pub region: &'a str,
    pub signature: PostSignature,
}

/// The form fields of a POST policy, in the order they must be sent (the
/// file part goes after all of them).
pub fn post_fields(policy: &PostPolicy<'_>, creds: &Credentials) -> Vec<(String, String)> {
    let expiration = policy.now + jiff::SignedDuration::from_secs(policy.expires_in as i64);
    // Built like Python's json.dumps, the way boto3 writes it.
    let mut conditions = vec![
        format!("[\"content-length-range\", 1, {}]", policy.max_size),
        format!("{{\"Content-Type\": {}}}", json_str(policy.content_type)),
        format!("{{\"bucket\": {}}}", json_str(policy.bucket)),
        format!("{{\"key\": {}}}", json_str(policy.key)),
    ];
    let mut fields = vec![
        ("Content-Type".to_string(), policy.content_type.to_string()),
        ("key".to_string(), policy.key.to_string()),
    ];
    let v4 = match policy.signature {
        PostSignature::V4 => {
            let date = amz_date(policy.now);
            let credential = format!("{}/{}", creds.access_key, scope(&date[..8], policy.region));
            conditions.push("{\"x-amz-algorithm\": \"AWS4-HMAC-SHA256\"}".into());
            conditions.push(format!(
                "{{\"x-amz-credential\": {}}}",
                json_str(&credential)
            ));
            conditions.push(format!("{{\"x-amz-date\": {}}}", json_str(&date)));
            fields.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
            fields.push(("x-amz-credential".into(), credential));
            fields.push(("x-amz-date".into(), date.clone()));
            Some(date)
        }
        PostSignature::V2 => {
            fields.push(("AWSAccessKeyId".into(), creds.access_key.clone()));
            None
        }
    };
    let document = format!(
        "{{\"expiration\": \"{}\", \"conditions\": [{}]}}",
        expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        conditions.join(", ")
    );
    let encoded = STANDARD.encode(document);
    fields.push(("policy".into(), encoded.clone()));
    match v4 {
        Some(date) => {
            let key = signing_key(&creds.secret_key, &date[..8], policy.region);
            fields.push((
                "x-amz-signature".into(),
                hex::encode(hmac256(&key, encoded.as_bytes())),
            ));
        }
        None => {
            let mut mac =
                <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(creds.secret_key.as_bytes())
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(encoded.as_bytes());
            fields.push((
                "signature".into(),
                STANDARD.encode(mac.finalize().into_bytes()),
            ));
        }
    }
    fields
}

/// A request to presign with SigV4 query authentication.
#[derive(Debug)]
pub struct Presign<'a> {
    pub method: &'a str,
    /// `http://host:port`, no trailing slash.
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    /// Extra query parameters, e.g. `partNumber` and `uploadId`.
    pub query: &'a [(&'a str, String)],
    pub expires_in: u64,
    pub now: jiff::Timestamp,
    pub region: &'a str,
    /// Signed in (`content-length` among the signed headers): the request
    /// must carry exactly this many bytes, and say so up front.
    pub content_length: Option<u64>,
}

/// A presigned URL: anyone holding it may make this one request until it
/// expires, without credentials.
pub fn presign_url(request: &Presign<'_>, creds: &Credentials) -> String {
    let date = amz_date(request.now);
    let credential = format!("{}/{}", creds.access_key, scope(&date[..8], request.region));
    let host = request
        .endpoint
        .split_once("://")
        .map_or(request.endpoint, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    // Path-style; an empty bucket is a virtual-hosted endpoint.
    let path = if request.bucket.is_empty() {
        format!("/{}", encode(request.key, false))
    } else {
        format!(
            "/{}/{}",
            encode(request.bucket, false),
            encode(request.key, false)
        )
    };
    let (headers, signed) = match request.content_length {
        Some(n) => (
            format!("content-length:{n}\nhost:{host}\n"),
            "content-length;host",
        ),
        None => (format!("host:{host}\n"), "host"),
    };
    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(k, v)| (encode(k, true), encode(v, true)))
        .collect();
    for (k, v) in [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", credential),
        ("X-Amz-Date", date.clone()),
        ("X-Amz-Expires", request.expires_in.to_string()),
        ("X-Amz-SignedHeaders", signed.to_string()),
    ] {
        query.push((k.to_string(), encode(&v, true)));
    }
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical = format!(
        "{}\n{path}\n{query}\n{headers}\n{signed}\nUNSIGNED-PAYLOAD",
        request.method
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}\n{}",
        scope(&date[..8], request.region),
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(&creds.secret_key, &date[..8], request.region);
    let signature = hex::encode(hmac256(&key, to_sign.as_bytes()));
    format!(
        "{}{path}?{query}&X-Amz-Signature={signature}",
        request.endpoint
    )
}

fn amz_date(t: jiff::Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

fn scope(day: &str, region: &str) -> String {
    format!("{day}/{region}/s3/aws4_request")
}

fn signing_key(secret: &str, day: &str, region: &str) -> Vec<u8> {
    let mut key = hmac256(format!("AWS4{secret}").as_bytes(), day.as_bytes());
    for part in [region, "s3", "aws4_request"] {
        key = hmac256(&key, part.as_bytes());
    }
    key
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// A JSON string as Python's json.dumps writes it (non-ASCII escaped).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// RFC 3986 percent-encoding as SigV4 wants it; `/` kept in paths.
fn encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            b'/' if !encode_slash => out.push('/'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_creds() -> Credentials {
        // The key pair of AWS's documented examples.
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    #[test]
    fn presigned_get_matches_the_aws_documented_example() {
        // "Authenticating Requests: Using Query Parameters (AWS Signature
        // Version 4)", S3 API reference: GET /test.txt, 86400 s.
        let now = "2013-05-24T00:00:00Z".parse().unwrap();
        let url = presign_url(
            &Presign {
                method: "GET",
                endpoint: "https://examplebucket.s3.amazonaws.com",
                bucket: "",
                key: "test.txt",
                query: &[],
                expires_in: 86400,
                now,
                region: "us-east-1",
                content_length: None,
            },
            &example_creds(),
        );
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    /// The order and the policy document as boto3's `generate_presigned_post`
    /// writes them (its field order and `json.dumps` spacing); the
    /// signatures are checked apart, below.
    #[test]
    fn post_policy_fields_come_in_boto3_order() {
        let now: jiff::Timestamp = "2026-11-25T17:50:53Z".parse().unwrap();
        let policy = PostPolicy {
            bucket: "b",
            key: "u/raw/x.xml",
            content_type: "application/xml",
            max_size: 2048,
            expires_in: 300,
            now,
            region: "us-east-1",
            signature: PostSignature::V4,
        };
        let fields = post_fields(&policy, &example_creds());
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "key",
                "x-amz-algorithm",
                "x-amz-credential",
                "x-amz-date",
                "policy",
                "x-amz-signature"
            ]
        );
        let document = STANDARD.decode(&fields[5].1).unwrap();
        assert_eq!(
            String::from_utf8(document).unwrap(),
            "{\"expiration\": \"2026-11-25T17:55:53Z\", \"conditions\": [[\"content-length-range\", 1, 2048], \
             {\"Content-Type\": \"application/xml\"}, {\"bucket\": \"b\"}, {\"key\": \"u/raw/x.xml\"}, \
             {\"x-amz-algorithm\": \"AWS4-HMAC-SHA256\"}, \
             {\"x-amz-credential\": \"AKIAIOSFODNN7EXAMPLE/20261125/us-east-1/s3/aws4_request\"}, \
             {\"x-amz-date\": \"20261125T175053Z\"}]}"
        );
        let v2 = post_fields(
            &PostPolicy {
                signature: PostSignature::V2,
                ..policy
            },
            &example_creds(),
        );
        let names: Vec<&str> = v2.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "key",
                "AWSAccessKeyId",
                "policy",
                "signature"
            ]
        );
    }

    /// SigV4 and V2 POST signatures, computed here again from AWS's
    /// description of them (not through this module's helpers): the
    /// signing key is HMAC-SHA256 chained over "AWS4"+secret, the day, the
    /// region, "s3" and "aws4_request"; the signature is the key's
    /// HMAC-SHA256 of the base64 policy, in hex. V2: base64 of HMAC-SHA1
    /// of the base64 policy under the secret.
    #[test]
    fn post_signatures_are_what_aws_describes() {
        fn mac256(key: &[u8], data: &str) -> Vec<u8> {
            let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
            mac.update(data.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        let creds = example_creds();
        let policy = PostPolicy {
            bucket: "owi",
            key: "u1/raw/owi-1-abc.xml",
            content_type: "application/xml",
            max_size: 1 << 30,
            expires_in: 3600,
            now: "2015-12-29T00:00:00Z".parse().unwrap(),
            region: "eu-central-1",
            signature: PostSignature::V4,
        };
        let fields = post_fields(&policy, &creds);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name} field"))
        };
        assert_eq!(field("key"), "u1/raw/owi-1-abc.xml");
        assert_eq!(field("Content-Type"), "application/xml");
        assert_eq!(field("x-amz-algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(
            field("x-amz-credential"),
            "AKIAIOSFODNN7EXAMPLE/20151229/eu-central-1/s3/aws4_request"
        );
        assert_eq!(field("x-amz-date"), "20151229T000000Z");
        let mut key = mac256(format!("AWS4{}", creds.secret_key).as_bytes(), "20151229");
        for part in ["eu-central-1", "s3", "aws4_request"] {
            key = mac256(&key, part);
        }
        let expected = hex::encode(mac256(&key, &field("policy")));
        assert_eq!(field("x-amz-signature"), expected);

        let v2 = post_fields(
            &PostPolicy {
                signature: PostSignature::V2,
                ..policy
            },
            &creds,
        );
        let v2_field = |name: &str| {
            v2.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name} field"))
        };
        let mut mac =
            <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(creds.secret_key.as_bytes()).unwrap();
        mac.update(v2_field("policy").as_bytes());
        assert_eq!(
            v2_field("signature"),
            STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(v2_field("AWSAccessKeyId"), "AKIAIOSFODNN7EXAMPLE");
    }

    #[test]
    fn json_strings_are_escaped_like_python() {
        assert_eq!(json_str("a\"b"), "\"a\\\"b\"");
        assert_eq!(json_str("э"), "\"\\u044d\"");
        assert_eq!(json_str("😀"), "\"\\ud83d\\ude00\"");
    }

    #[test]
    fn paths_keep_slashes_and_encode_the_rest() {
        assert_eq!(encode("u/raw/a b+.xml", false), "u/raw/a%20b%2B.xml");
        assert_eq!(encode("a/b", true), "a%2Fb");
        assert_eq!(encode("э", false), "%D1%8D");
    }
}
