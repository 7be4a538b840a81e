//! HTTP-level tests of `ocil-serve`, written from the OCI distribution-spec conformance
//! suite (`conformance/` of opencontainers/distribution-spec, v1.1): its four workflows
//! spec by spec (the requests it sends, the answers it accepts), the 13 specs
//! docker-registry 2.8 fails, and the bad input the server must answer with a spec error
//! while it keeps serving everyone else. Every server listens on 127.0.0.1 on a random
//! port; every loop is bounded.

mod support;

mod auth_tls;
mod discovery;
mod hostile;
mod management;
mod pull;
mod push;
