//! A certificate's subject: the common name and organizations (user name and groups of a client
//! certificate, and the CN checked against `requestheader-allowed-names`), read with
//! `x509-parser`. The chain itself is verified by webpki; this only reads an already verified
//! certificate.

use x509_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::x509::AttributeTypeAndValue;

/// A directory string as Go's crypto/x509 reads it: the ASCII and UTF-8 string types, and
/// BMPString (UTF-16BE). Other types (and other classes) are skipped.
fn decode_string(value: &Any<'_>) -> Option<String> {
    if value.class() != Class::Universal {
        return None;
    }
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::T61String
        | Tag::Ia5String
        | Tag::VisibleString => Some(String::from_utf8_lossy(value.data).into_owned()),
        Tag::BmpString => {
            let units: Vec<u16> = value
                .data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

fn value_of(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    decode_string(attr.attr_value())
}

/// The subject's common name (the last one, as Go takes it) and organizations, or `None` for
/// a certificate that does not parse.
pub fn subject_cn_and_orgs(cert_der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .filter_map(value_of)
        .last()
        .unwrap_or_default();
    let orgs = subject.iter_organization().filter_map(value_of).collect();
    Some((cn, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    #[test]
    fn reads_cn_and_orgs() {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        params
            .distinguished_name
            .push(DnType::CommonName, "front-proxy-client");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cn, orgs) = subject_cn_and_orgs(cert.der()).unwrap();
        assert_eq!(cn, "front-proxy-client");
        assert_eq!(orgs, ["system:masters"]);
    }

    #[test]
    fn reads_bmp_strings() {
        use rcgen::string::BmpString;
        use rcgen::DnValue;
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        // rcgen keeps one value per attribute type.
        params.distinguished_name.push(
            DnType::OrganizationName,
            DnValue::BmpString(BmpString::try_from("team-ä").unwrap()),
        );
        params.distinguished_name.push(
            DnType::CommonName,
            DnValue::BmpString(BmpString::try_from("jane").unwrap()),
        );
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cn, orgs) = subject_cn_and_orgs(cert.der()).unwrap();
        assert_eq!(cn, "jane");
        assert_eq!(orgs, ["team-ä"]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(subject_cn_and_orgs(b"").is_none());
        assert!(subject_cn_and_orgs(&[0x30, 0x82, 0xff]).is_none());
        assert!(subject_cn_and_orgs(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
    }
}
