//! Tests of remotes: folder and S3.
