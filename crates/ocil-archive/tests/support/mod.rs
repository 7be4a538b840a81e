//! Helpers shared by this crate's integration tests (and, by path, the CLI's archive tests).

pub(crate) mod corpus;
pub(crate) mod hostile;
