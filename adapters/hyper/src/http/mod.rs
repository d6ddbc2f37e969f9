//! HTTP plumbing: the listener, the route table, reading requests and building replies.
//!
//! Everything here is about carrying bytes between a socket and the engine: accepting connections
//! with their limits ([`server`]), the route table and request pipeline (`routes`), reading a
//! request once with its body limit (`request`), the client address behind trusted proxies
//! (`proxies`), the JSON endpoints that hand a request to the engine (`json_endpoints`), and the
//! responses with their security headers (`reply`), and the Prometheus figures on a listener of
//! their own (`metrics`). It is kept apart from the pages people see
//! ([`crate::pages`]) and the operator's commands ([`crate::admin`]) so that a change to the
//! wire's rules (a limit, a header) is made and reviewed in one place. Only [`server`] is public:
//! it is how the binary and the tests start a server.

pub(crate) mod json_endpoints;
pub(crate) mod metrics;
pub(crate) mod proxies;
pub(crate) mod reply;
pub(crate) mod request;
pub(crate) mod routes;
pub mod server;
