//! The embedded object store: s3s over a directory (s3s-fs), on its own
//! loopback listener, enforcing signatures, POST policies and multipart
//! rules as S3 does. A wrapper around the storage reports each completed
//! upload, the way S3 event notifications do for the real server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use tokio::sync::mpsc;

use super::composite::Composites;
use super::post_once::{self, Claim, UsedPolicies};
use super::sign::Credentials;
use crate::error::Error;

/// An object that finished uploading: by POST, PUT or a completed
/// multipart upload. Failed uploads never produce one.
#[derive(Debug, Clone)]
pub struct Created {
    pub bucket: String,
    pub key: String,
    /// The multipart upload that made it, if one did.
    pub upload_id: Option<String>,
}

/// A store bound to its port but not yet serving.
pub struct EmbeddedStore {
    listener: std::net::TcpListener,
    service: s3s::service::S3Service,
    endpoint: String,
    used: Arc<UsedPolicies>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// How the embedded store is set up.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub root: PathBuf,
    pub bucket: String,
    pub addr: SocketAddr,
    pub credentials: Credentials,
    /// A POST upload is held in memory by s3s 0.14: this caps it.
    pub post_max_bytes: u64,
    /// How old a signed request may be. A SigV4 POST policy carries its
    /// signing time, so this must cover the longest URL lifetime.
    pub max_skew_secs: u32,
}

impl EmbeddedStore {
    /// Creates the bucket directory and binds the listener; `created`
    /// receives every completed upload.
    pub fn bind(
        options: &StoreOptions,
        created: mpsc::UnboundedSender<Created>,
    ) -> Result<Self, Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let bucket_dir = options.root.join(&options.bucket);
        std::fs::create_dir_all(&bucket_dir).map_err(io(&bucket_dir))?;
        // s3s-fs works under the canonical root: the parts' paths must match.
        let root = std::fs::canonicalize(&options.root).map_err(io(&options.root))?;
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| {
            Error::Config(format!(
                "the object store at {}: {e:?}",
                options.root.display()
            ))
        })?;
        let mut config = s3s::config::S3Config::default();
        config.presigned_url_max_skew_time_secs = options.max_skew_secs;
        config.post_object_max_file_size = options.post_max_bytes;
        // No form whose fields the POST layer cannot read whole.
        config.form_max_fields_size = post_once::FIELDS_LIMIT;
        let used = UsedPolicies::load(post_once::ledger_path(&options.root))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(Observed {
            inner: fs,
            created,
            composites: Arc::new(Composites::new(root)),
        });
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            options.credentials.access_key.clone(),
            options.credentials.secret_key.clone(),
        ));
        builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
            config,
        ))));
        let listener = std::net::TcpListener::bind(options.addr).map_err(Error::Listen)?;
        listener.set_nonblocking(true).map_err(Error::Listen)?;
        let addr = listener.local_addr().map_err(Error::Listen)?;
        Ok(EmbeddedStore {
            listener,
            service: builder.build(),
            endpoint: format!("http://{addr}"),
            used,
        })
    }

    /// The request handler, for driving it in-process (fuzzing).
    pub(crate) fn service(&self) -> s3s::service::S3Service {
        self.service.clone()
    }

    /// `http://127.0.0.1:PORT`: path-style URLs start here.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let listener = tokio::net::TcpListener::from_std(self.listener).map_err(Error::Listen)?;
        let service =
            axum::error_handling::HandleError::new(self.service, |e: s3s::HttpError| async move {
                tracing::error!(error = ?e, "the object store failed a request");
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            });
        let app = axum::Router::new().fallback_service(service).layer(
            axum::middleware::from_fn_with_state(Arc::clone(&self.used), post_once::hold_posts),
        );
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Listen);
        self.used.flushed().await;
        served
    }
}

/// The bytes of the object at `bucket`/`key` in an embedded store whose
/// directory is `root` (`objects/` in the data directory), as GET serves
/// them, parts and all: for tests and tools that look at the store on disk.
pub fn read_object(root: &Path, bucket: &str, key: &str) -> std::io::Result<Vec<u8>> {
    Composites::new(std::fs::canonicalize(root)?).read(bucket, key)
}

/// s3s-fs with every completed upload reported, and multipart objects
/// kept as their parts (`composite.rs`).
struct Observed {
    inner: s3s_fs::FileSystem,
    created: mpsc::UnboundedSender<Created>,
    composites: Arc<Composites>,
}

impl Observed {
    fn report(&self, bucket: &str, key: &str, upload_id: Option<String>) {
        // Nobody listening means the server has stopped: nothing to do.
        let _ = self.created.send(Created {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id,
        });
    }
}

/// Emits the whole `impl S3` (a macro inside an `#[async_trait]` impl
/// expands too late) with the given methods passed straight through.
macro_rules! observed_s3 {
    ($($method:ident($input:ty) -> $output:ty;)*) => {
        #[async_trait::async_trait]
        impl S3 for Observed {
            $(
                async fn $method(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.inner.$method(req).await
                }
            )*

            async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
                let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
                let response = self.inner.put_object(req).await?;
                self.composites.forget(&bucket, &key).await;
                self.report(&bucket, &key, None);
                Ok(response)
            }

            // Overridden so a POST reaches the storage once, as a POST (the
            // default would route it through our `put_object`), and only
            // with its policy claimed by the layer in front (`post_once`).
            async fn post_object(&self, req: S3Request<PostObjectInput>) -> S3Result<S3Response<PostObjectOutput>> {
                let Some(claim) = req.extensions.get::<Claim>().cloned() else {
                    return Err(s3s::s3_error!(AccessDenied, "The POST form's signature could not be read"));
                };
                let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
                let response = self.inner.post_object(req).await?;
                claim.used();
                self.composites.forget(&bucket, &key).await;
                self.report(&bucket, &key, None);
                Ok(response)
            }

            async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
                let (upload_id, number) = (req.input.upload_id.clone(), req.input.part_number);
                let response = self.inner.upload_part(req).await?;
                if let Some(etag) = &response.output.e_tag {
                    self.composites.part_stored(&upload_id, number, etag.value());
                }
                Ok(response)
            }

            // The object is made of its parts, not a copy of them; the
            // notice goes once it can be read.
            async fn complete_multipart_upload(
                &self,
                req: S3Request<CompleteMultipartUploadInput>,
            ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
                let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
                let upload_id = req.input.upload_id.clone();
                if !self.composites.handles(&req.input) {
                    let response = self.inner.complete_multipart_upload(req).await?;
                    self.composites.forget(&bucket, &key).await;
                    self.report(&bucket, &key, Some(upload_id));
                    return Ok(response);
                }
                let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
                let etag = self.composites.complete(&req.input, access_key).await?;
                self.report(&bucket, &key, Some(upload_id));
                Ok(S3Response::new(CompleteMultipartUploadOutput {
                    bucket: Some(bucket),
                    key: Some(key),
                    e_tag: Some(ETag::Strong(etag)),
                    ..Default::default()
                }))
            }

            async fn abort_multipart_upload(
                &self,
                req: S3Request<AbortMultipartUploadInput>,
            ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
                let upload_id = req.input.upload_id.clone();
                let response = self.inner.abort_multipart_upload(req).await?;
                self.composites.upload_ended(&upload_id);
                Ok(response)
            }

            // s3s-fs answers with the headers (length, range, ETag, type)
            // from the object's sparse file; the bytes come from its parts.
            async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
                let (bucket, key, range) = (req.input.bucket.clone(), req.input.key.clone(), req.input.range);
                let Some(manifest) = self.composites.current(&bucket, &key).await else {
                    return self.inner.get_object(req).await;
                };
                let mut response = self.inner.get_object(req).await?;
                let span = match range {
                    Some(range) => range
                        .check(manifest.len)
                        .map_err(|_| s3s::s3_error!(InvalidRange))?,
                    None => 0..manifest.len,
                };
                response.output.body = Some(self.composites.body(&manifest, span));
                Ok(response)
            }

            async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
                let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
                let response = self.inner.delete_object(req).await?;
                self.composites.forget(&bucket, &key).await;
                Ok(response)
            }

            async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
                let bucket = req.input.bucket.clone();
                let response = self.inner.delete_objects(req).await?;
                for deleted in response.output.deleted.iter().flatten() {
                    if let Some(key) = &deleted.key {
                        self.composites.forget(&bucket, key).await;
                    }
                }
                Ok(response)
            }
        }
    };
}

observed_s3! {
    create_bucket(CreateBucketInput) -> CreateBucketOutput;
    head_bucket(HeadBucketInput) -> HeadBucketOutput;
    list_buckets(ListBucketsInput) -> ListBucketsOutput;
    get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
    list_objects(ListObjectsInput) -> ListObjectsOutput;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output;
    head_object(HeadObjectInput) -> HeadObjectOutput;
    create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
    list_parts(ListPartsInput) -> ListPartsOutput;
}
