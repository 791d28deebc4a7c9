//! A remote in S3 or S3-compatible object storage (MinIO, Ceph, R2, SeaweedFS...), through the
//! object_store crate.
//!
//! Credentials and region come the AWS way (environment variables such as AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL); an endpoint can also be set per remote.
//! They are never printed nor stored. Refs move by conditional PUT: `If-None-Match: *` to
//! create, `If-Match: <etag>` to update. Large files upload in parts.

use std::ops::Range;
use std::path::Path;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart,
};

use super::transport::{parse_ref, RefVersion, Result, Transport, TransportError};
use crate::hash::ObjectId;

/// Settings of an S3 remote besides its URL.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint override (`http://127.0.0.1:8333`).
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
}

/// An S3 remote.
pub struct S3Transport {
    store: AmazonS3,
    prefix: String,
    url: String,
    rt: tokio::runtime::Runtime,
}

impl S3Transport {
    /// Connects to `s3://bucket/prefix`.
    pub fn new(url: &str, opts: &S3Options) -> Result<Self> {
        let fail = |m: String| TransportError::Failed {
            remote: url.to_string(),
            message: m,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| fail("not an s3:// URL".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(fail("the URL names no bucket".into()));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok());
        if let Some(e) = endpoint {
            let parsed = url::Url::parse(&e)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            let Some(parsed) = parsed else {
                return Err(fail(format!(
                    "endpoint '{e}' is not an http:// or https:// URL"
                )));
            };
            // A server that is down would otherwise be retried for seconds without a word.
            reachable(&parsed, CONNECT_PROBE).map_err(|m| fail(format!("endpoint {e}: {m}")))?;
            b = b
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false)
                .with_endpoint(e);
        }
        let region = opts
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok());
        b = b.with_region(region.unwrap_or_else(|| "us-east-1".into()));
        // Never leave a credential out when the environment has none: fail with a clear message.
        credentials_available().map_err(fail)?;
        let store = b
            .build()
            .map_err(|e| fail(format!("cannot configure S3: {}", redact(&e.to_string()))))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the I/O runtime: {e}")))?;
        Ok(S3Transport {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            url: format!("s3://{bucket}/{}", prefix.trim_matches('/')),
            rt,
        })
    }

    fn key(&self, key: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(key)
        } else {
            StorePath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> TransportError {
        TransportError::Failed {
            remote: self.url.clone(),
            message: format!("{what}: {}", redact(&e.to_string())),
        }
    }

    /// Checks that the server honours the conditional writes refs depend on: creating a key
    /// that exists (`If-None-Match: *`) and replacing it under a stale version (`If-Match`)
    /// must both be refused. Returns the header the server ignores, if any.
    pub fn probe_conditional_writes(&self) -> Result<Option<&'static str>> {
        let key = self.key(&format!(
            "probes/cas-{}-{}",
            std::process::id(),
            crate::repo::now_ms()
        ));
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let stale = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: Some("\"00000000000000000000000000000000\"".into()),
                version: None,
            }),
            ..Default::default()
        };
        let refused = |r: &object_store::Result<object_store::PutResult>| {
            matches!(
                r,
                Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. })
            )
        };
        self.rt.block_on(async {
            self.store
                .put_opts(&key, PutPayload::from_static(b"1"), create.clone())
                .await
                .map_err(|e| self.fail("probe write", e))?;
            let second = self
                .store
                .put_opts(&key, PutPayload::from_static(b"2"), create)
                .await;
            let third = if refused(&second) {
                Some(
                    self.store
                        .put_opts(&key, PutPayload::from_static(b"3"), stale)
                        .await,
                )
            } else {
                None
            };
            let _ = self.store.delete(&key).await;
            match (second, third) {
                (Ok(_), _) => Ok(Some("If-None-Match")),
                (Err(e), None) => Err(self.fail("probe write", e)),
                (Err(_), Some(Ok(_))) => Ok(Some("If-Match")),
                (Err(_), Some(r)) if refused(&r) => Ok(None),
                (Err(_), Some(Err(e))) => Err(self.fail("probe write", e)),
            }
        })
    }
}

/// How long to wait for a TCP connection to an endpoint.
const CONNECT_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long to wait for a TCP connection to the instance metadata service, which answers at
/// once on EC2 and not at all elsewhere.
const METADATA_PROBE: std::time::Duration = std::time::Duration::from_secs(1);

/// Checks that something listens at `url`'s host and port within `timeout`; the error says
/// what happened.
fn reachable(url: &url::Url, timeout: std::time::Duration) -> std::result::Result<(), String> {
    use std::net::ToSocketAddrs;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<std::net::SocketAddr> = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = format!("connection refused at {addr} (is the server running?)");
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!("no answer from {addr} within {} s", timeout.as_secs());
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// Where object_store looks for credentials, in its order, besides the instance metadata
/// service.
const CREDENTIAL_SOURCES: &str = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
     AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, \
     AWS_CONTAINER_CREDENTIALS_FULL_URI, or an EC2 instance role";

/// Checks that some source of credentials exists. Without one in the environment, object_store
/// asks the EC2 instance metadata service, which off EC2 answered with a 403 or a timeout after
/// seconds of retries; it is asked once, quickly, here instead.
fn credentials_available() -> std::result::Result<(), String> {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    if set("AWS_ACCESS_KEY_ID")
        || set("AWS_SECRET_ACCESS_KEY")
        || (set("AWS_WEB_IDENTITY_TOKEN_FILE") && set("AWS_ROLE_ARN"))
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || (set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            && set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))
    {
        return Ok(());
    }
    let profiles = if set("AWS_PROFILE") {
        "; AWS_PROFILE is set, but profiles are not read: put its credentials in the \
         environment with `eval \"$(aws configure export-credentials --format env)\"`"
    } else {
        ""
    };
    let no_credentials = || format!("no AWS credentials found ({CREDENTIAL_SOURCES}){profiles}");
    let disabled =
        std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if disabled {
        return Err(no_credentials());
    }
    let metadata = std::env::var("AWS_METADATA_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "http://169.254.169.254".into());
    match url::Url::parse(&metadata) {
        Ok(u) if reachable(&u, METADATA_PROBE).is_ok() => Ok(()),
        _ => Err(no_credentials()),
    }
}

/// Removes anything that looks like a credential from a message, and keeps it on one line.
fn redact(msg: &str) -> String {
    let mut out: String = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 400 {
        out = out.chars().take(400).collect::<String>() + "...";
    }
    for var in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
    ] {
        if let Ok(v) = std::env::var(var) {
            if v.len() >= 4 {
                out = out.replace(&v, "<redacted>");
            }
        }
    }
    out
}

impl Transport for S3Transport {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let p = self.key(prefix.trim_end_matches('/'));
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        self.rt.block_on(async {
            let metas: Vec<object_store::ObjectMeta> = self
                .store
                .list(Some(&p))
                .try_collect()
                .await
                .map_err(|e| self.fail("list", e))?;
            let mut out: Vec<(String, u64)> = metas
                .into_iter()
                .map(|m| {
                    (
                        m.location
                            .as_ref()
                            .get(strip..)
                            .unwrap_or_default()
                            .to_string(),
                        m.size,
                    )
                })
                .collect();
            out.sort();
            Ok(out)
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.rt.block_on(async {
            match self.store.get(&self.key(key)).await {
                Ok(r) => Ok(Some(
                    r.bytes().await.map_err(|e| self.fail(key, e))?.to_vec(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.fail(key, e)),
            }
        })
    }

    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        self.rt.block_on(async {
            let got = self
                .store
                .get_ranges(&self.key(key), ranges)
                .await
                .map_err(|e| self.fail(key, e))?;
            Ok(got.into_iter().map(|b| b.to_vec()).collect())
        })
    }

    fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        use std::io::Read;
        let loc = self.key(key);
        self.rt.block_on(async {
            let upload = self
                .store
                .put_multipart(&loc)
                .await
                .map_err(|e| self.fail(key, e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, 16 << 20);
            let mut f = std::fs::File::open(path).map_err(|e| self.fail(key, e))?;
            let mut buf = vec![0u8; 4 << 20];
            loop {
                let n = f.read(&mut buf).map_err(|e| self.fail(key, e))?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(4)
                    .await
                    .map_err(|e| self.fail(key, e))?;
                w.write(&buf[..n]);
            }
            w.finish().await.map_err(|e| self.fail(key, e))?;
            Ok(())
        })
    }

    fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<()> {
        self.rt.block_on(async {
            self.store
                .put(&self.key(key), PutPayload::from(data))
                .await
                .map_err(|e| self.fail(key, e))?;
            Ok(())
        })
    }

    fn read_ref(&self, name: &str) -> Result<Option<RefVersion>> {
        self.rt.block_on(async {
            match self.store.get(&self.key(name)).await {
                Ok(r) => {
                    let etag = r.meta.e_tag.clone().unwrap_or_default();
                    let bytes = r.bytes().await.map_err(|e| self.fail(name, e))?;
                    let id = parse_ref(&self.url, name, &bytes)?;
                    Ok(Some(RefVersion { id, version: etag }))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.fail(name, e)),
            }
        })
    }

    fn cas_ref(&self, name: &str, expected: Option<&RefVersion>, new: &ObjectId) -> Result<()> {
        let mode = match expected {
            None => PutMode::Create,
            Some(v) => PutMode::Update(UpdateVersion {
                e_tag: Some(v.version.clone()),
                version: None,
            }),
        };
        let payload = PutPayload::from(format!("{}\n", new.to_hex()).into_bytes());
        self.rt.block_on(async {
            match self
                .store
                .put_opts(
                    &self.key(name),
                    payload,
                    PutOptions {
                        mode,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => Err(TransportError::Conflict {
                    remote: self.url.clone(),
                    name: name.to_string(),
                }),
                Err(e) => Err(self.fail(name, e)),
            }
        })
    }
}
