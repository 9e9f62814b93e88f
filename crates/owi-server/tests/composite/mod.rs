//! A completed multipart upload in the embedded store is its parts read
//! back in order, not a second copy: every byte, every range, S3's
//! multipart ETag, and a key written over or deleted afterwards.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::{Digest, Md5};

use crate::util::*;

/// Parts of 5 MiB, 5 MiB and a little, with bytes that tell every offset
/// apart.
fn parts() -> Vec<Vec<u8>> {
    let whole: Vec<u8> = (0..(10u32 << 20) + 12_345)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    whole.chunks(5 << 20).map(<[u8]>::to_vec).collect()
}

async fn upload(s: &TestServer, key: &str, parts: &[Vec<u8>]) -> (String, Vec<String>) {
    let created =
        s.s3.create_multipart_upload()
            .bucket(&s.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    let id = created.upload_id().unwrap().to_string();
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let stored =
            s.s3.upload_part()
                .bucket(&s.bucket)
                .key(key)
                .upload_id(&id)
                .part_number(i as i32 + 1)
                .body(ByteStream::from(part.clone()))
                .send()
                .await
                .unwrap();
        etags.push(stored.e_tag().unwrap().to_string());
    }
    (id, etags)
}

async fn complete(s: &TestServer, key: &str, id: &str, etags: &[String]) -> Result<String, String> {
    let parts = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| {
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(etag)
                .build()
        })
        .collect();
    s.s3.complete_multipart_upload()
        .bucket(&s.bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map(|done| done.e_tag().unwrap_or_default().to_string())
        .map_err(|e| format!("{:?}", e.into_service_error()))
}

async fn get(s: &TestServer, key: &str, range: Option<&str>) -> Vec<u8> {
    let got =
        s.s3.get_object()
            .bucket(&s.bucket)
            .key(key)
            .set_range(range.map(str::to_string))
            .send()
            .await
            .unwrap();
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Files in the store's root whose names start with `prefix`.
fn root_files(s: &TestServer, prefix: &str) -> Vec<String> {
    std::fs::read_dir(s.dir.path().join("objects"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[tokio::test]
async fn a_completed_multipart_object_is_its_parts_read_in_order() {
    let s = TestServer::start().await;
    // Outside any user's `raw/`: stored, never imported.
    let key = "elsewhere/object.bin";
    let parts = parts();
    let whole = parts.concat();
    let (id, etags) = upload(&s, key, &parts).await;

    let mut wrong = etags.clone();
    wrong[1] = format!("\"{}\"", "0".repeat(32));
    let refused = complete(&s, key, &id, &wrong).await.unwrap_err();
    assert!(refused.contains("InvalidPart"), "{refused}");

    let etag = complete(&s, key, &id, &etags).await.unwrap();
    let mut all = Md5::new();
    for part in &parts {
        all.update(Md5::digest(part));
    }
    let expected = format!("\"{}-3\"", hex::encode(all.finalize()));
    assert_eq!(etag, expected);

    assert!(get(&s, key, None).await == whole, "the whole object");
    let from = (5 << 20) - 1000;
    let to = (10 << 20) + 500;
    let range = format!("bytes={from}-{to}");
    assert!(
        get(&s, key, Some(&range)).await == whole[from..=to],
        "a range across parts"
    );
    assert!(get(&s, key, Some("bytes=-2000")).await == whole[whole.len() - 2000..]);
    assert!(get(&s, key, Some("bytes=10485760-")).await == whole[10 << 20..]);
    let head =
        s.s3.head_object()
            .bucket(&s.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    assert_eq!(head.content_length(), Some(whole.len() as i64));
    assert_eq!(head.e_tag(), Some(expected.as_str()));
    assert_eq!(s.objects().await, [key]);

    // No second copy: the object's own file holds no data blocks.
    let object = s.dir.path().join("objects").join(&s.bucket).join(key);
    assert_eq!(
        std::fs::metadata(&object).unwrap().len(),
        whole.len() as u64
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let allocated = std::fs::metadata(&object).unwrap().blocks() * 512;
        assert!(allocated < 1 << 20, "{allocated} bytes allocated");
    }
    assert_eq!(root_files(&s, ".object-").len(), 3);

    // Written over: the new bytes, and the parts let go.
    s.s3.put_object()
        .bucket(&s.bucket)
        .key(key)
        .body(ByteStream::from_static(b"replaced"))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s, key, None).await, b"replaced");
    assert!(root_files(&s, ".object-").is_empty());

    // Deleted: nothing of it stays.
    let (id, etags) = upload(&s, key, &parts).await;
    complete(&s, key, &id, &etags).await.unwrap();
    assert!(get(&s, key, None).await == whole);
    s.s3.delete_object()
        .bucket(&s.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert!(root_files(&s, ".object-").is_empty());
    assert!(s.objects().await.is_empty());
}
