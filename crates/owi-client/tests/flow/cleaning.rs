//! Cleaning in the flow: what a strict parser refuses is blanked, the
//! rest goes as it is, whether the check reads the export or an earlier
//! read's check is kept.

use owi_client::{ImportRequest, Method};

use super::{flow, preview, run};
use crate::{sample_export, server};

#[tokio::test]
async fn without_cleaning_the_bytes_go_exactly_as_they_are() {
    let s = server().await;
    let f = flow(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 1500, true);
    let mut request = ImportRequest {
        method: Method::S3,
        clean: false,
        ..ImportRequest::new(m.zip_path.as_ref().unwrap(), &f.user)
    };
    request.share.include_me = true;
    let (report, _, _) = run(&f, &request).await;
    let report = report.unwrap();
    let uploaded = report.pieces[0].uploaded.as_ref().unwrap();
    let object = s.object(&uploaded.name).unwrap();
    assert_eq!(object, std::fs::read(&m.xml_path).unwrap());
    let sent = f
        .importer
        .already_sent(m.zip_path.as_ref().unwrap(), &f.user)
        .await
        .unwrap()
        .unwrap();
    assert!(!sent.cleaned);
}

/// Characters XML forbids reach the server blanked, whether the check
/// reads the export or the preview's kept check says what it holds: a
/// check that missed them would let the upload skip the scan that blanks
/// them.
#[tokio::test]
async fn characters_xml_forbids_reach_the_server_blanked() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 3000, false);
    let mut xml = std::fs::read(&m.xml_path).unwrap();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let root = find(&xml, b"<HealthData").unwrap();
    let at = find(&xml[root..], b"sourceName=\"").unwrap() + root + 12;
    xml.splice(at..at, *b"\x0B&#11;");
    std::fs::write(&m.xml_path, &xml).unwrap();
    let mut expected = xml[root..].to_vec();
    expected[at - root..at - root + 6].fill(b' ');
    for previewed in [false, true] {
        let f = flow(&s).await;
        if previewed {
            preview(&f, &m.xml_path);
        }
        let mut request = ImportRequest {
            method: Method::S3,
            ..ImportRequest::new(&m.xml_path, &f.user)
        };
        request.share.include_me = true;
        let (report, _, _) = run(&f, &request).await;
        let report = report.unwrap();
        let uploaded = report.pieces[0].uploaded.as_ref().unwrap();
        let object = s.object(&uploaded.name).unwrap();
        assert_eq!(object.len(), xml.len());
        assert!(
            object[root..] == expected[..],
            "previewed: {previewed}: only the forbidden characters blanked"
        );
    }
}
