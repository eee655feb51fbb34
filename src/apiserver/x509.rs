//! Just enough DER to read a certificate's subject: the common name and organizations (user name
//! and groups of a client certificate, and the CN checked against `requestheader-allowed-names`).
//! The chain itself is verified by webpki; this only reads an already verified certificate.

/// One DER TLV: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];

fn decode_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, T61String, IA5String, VisibleString
        0x0c | 0x13 | 0x14 | 0x16 | 0x1a => Some(String::from_utf8_lossy(bytes).into_owned()),
        // BMPString (UTF-16BE)
        0x1e => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// The subject's attributes as (OID bytes, value) pairs, in order.
fn subject_attributes(cert_der: &[u8]) -> Option<Vec<(Vec<u8>, String)>> {
    let (tag, cert, _) = tlv(cert_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (tag, mut name, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut out = Vec::new();
    while !name.is_empty() {
        let (tag, mut rdn, after) = tlv(name)?;
        name = after;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, atv, after) = tlv(rdn)?;
            rdn = after;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(atv)?;
            if tag != OID {
                return None;
            }
            let (vtag, vbytes, _) = tlv(value)?;
            if let Some(v) = decode_string(vtag, vbytes) {
                out.push((oid.to_vec(), v));
            }
        }
    }
    Some(out)
}

/// The subject's common name and organizations, or `None` for a certificate that does not parse.
pub fn subject_cn_and_orgs(cert_der: &[u8]) -> Option<(String, Vec<String>)> {
    let attrs = subject_attributes(cert_der)?;
    let cn = attrs
        .iter()
        .rev()
        .find(|(oid, _)| oid == OID_CN)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let orgs = attrs
        .iter()
        .filter(|(oid, _)| oid == OID_O)
        .map(|(_, v)| v.clone())
        .collect();
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
    fn rejects_garbage() {
        assert!(subject_cn_and_orgs(b"").is_none());
        assert!(subject_cn_and_orgs(&[0x30, 0x82, 0xff]).is_none());
        assert!(subject_cn_and_orgs(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
    }
}
