//! The api and the worker outlive their dependencies' outages, against the real thing: the
//! api binary as a child process, a worker started here as the binary starts one, a real cdk
//! mint over HTTP that the test stops and starts on the same port, and a private PostgreSQL
//! cluster the test stops and starts. Neither process is ever restarted; each test checks
//! they never exited.

mod database_down;
mod mint_down;
mod no_key;
mod support;
