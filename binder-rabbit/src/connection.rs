//! The binder's one AMQP connection, kept alive by a supervisor task: connect, watch for loss,
//! reconnect with exponential backoff. Producers and consumers open their channels on whatever
//! connection is current and follow it to the next one.
//!
//! lapin 4 has an experimental automatic recovery (`enable_auto_recover`) that replays
//! topology and consumers inside the client. The binder does not use it: it re-declares its
//! own topology and restarts its own consumers, so what happens after a broker restart is
//! bindery's code, visible and tested (`tests/restart.rs`), and delivery tags of a dead channel
//! can never be acknowledged on a new one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::{Error, Health, Result};
use futures::StreamExt;
use lapin::tcp::OwnedTLSConfig;
use lapin::uri::AMQPScheme;
use lapin::{Connection, ConnectionProperties, Event};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::RabbitOptions;

/// What the supervisor currently has.
#[derive(Clone)]
pub(crate) struct Link {
    /// Increases with every new connection.
    pub(crate) generation: u64,
    pub(crate) connection: Option<Arc<Connection>>,
    /// Why there is no connection (redacted), for health and errors.
    pub(crate) error: Option<String>,
}

/// A share in the connection: the binder and each of its producers and consumers hold one.
/// When the last is dropped (an app that forgot `shutdown`), the connection is closed.
pub(crate) struct Lease(Arc<Connector>);

impl Lease {
    pub(crate) fn new(connector: Arc<Connector>) -> Self {
        connector.users.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(connector)
    }
}

impl Clone for Lease {
    fn clone(&self) -> Self {
        Self::new(self.0.clone())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.0.users.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.shutdown.cancel();
        }
    }
}

impl std::ops::Deref for Lease {
    type Target = Arc<Connector>;
    fn deref(&self) -> &Arc<Connector> {
        &self.0
    }
}

pub(crate) struct Connector {
    users: std::sync::atomic::AtomicUsize,
    options: RabbitOptions,
    /// Extra roots and client identity for `amqps://`, read from the `tls-*` files at creation.
    /// Holds the client key: never `Debug`-printed.
    tls: OwnedTLSConfig,
    binder: String,
    link: watch::Sender<Link>,
    /// Someone saw the current connection fail before the supervisor did.
    broken: Notify,
    shutdown: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Connector {
    pub(crate) fn new(options: RabbitOptions, tls: OwnedTLSConfig, binder: String) -> Arc<Self> {
        let (link, _) =
            watch::channel(Link { generation: 0, connection: None, error: Some("not connected yet".into()) });
        Arc::new(Self {
            users: std::sync::atomic::AtomicUsize::new(0),
            options,
            tls,
            binder,
            link,
            broken: Notify::new(),
            shutdown: CancellationToken::new(),
            task: Mutex::new(None),
        })
    }

    pub(crate) fn options(&self) -> &RabbitOptions {
        &self.options
    }

    /// Starts the supervisor on first use (binders are created outside any async context).
    fn ensure_started(self: &Arc<Self>) {
        let Ok(mut task) = self.task.lock() else { return };
        if task.is_none() && !self.shutdown.is_cancelled() {
            let me = Arc::clone(self);
            *task = Some(tokio::spawn(async move { me.supervise().await }));
        }
    }

    /// The current connection, waiting up to `connect-timeout` for one.
    pub(crate) async fn current(self: &Arc<Self>) -> Result<(u64, Arc<Connection>)> {
        let timeout = self.options.connect_timeout;
        match tokio::time::timeout(timeout, self.next_after(0)).await {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(Error::closed(format!("rabbit binder `{}` is shut down", self.binder))),
            Err(_) => {
                let why = self.link.borrow().error.clone().unwrap_or_else(|| "connecting".into());
                Err(Error::broker(format!(
                    "RabbitMQ at {} not reachable within {timeout:?}: {why}",
                    self.options.uri.redacted()
                )))
            }
        }
    }

    /// Waits for a connection newer than generation `after`; `None` once shut down.
    pub(crate) async fn next_after(self: &Arc<Self>, after: u64) -> Option<(u64, Arc<Connection>)> {
        self.ensure_started();
        let mut rx = self.link.subscribe();
        loop {
            {
                let link = rx.borrow_and_update();
                if let (Some(c), true) = (&link.connection, link.generation > after) {
                    if c.status().connected() {
                        return Some((link.generation, c.clone()));
                    }
                }
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return None },
                _ = self.shutdown.cancelled() => return None,
            }
        }
    }

    /// Tells the supervisor that connection `generation` failed (a channel saw it first).
    pub(crate) fn report_broken(&self, generation: u64) {
        if self.link.borrow().generation == generation {
            self.broken.notify_one();
        }
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    pub(crate) fn health(&self) -> Health {
        let link = self.link.borrow();
        match (&link.connection, &link.error) {
            (Some(c), _) if c.status().connected() => Health::up(),
            (_, Some(e)) => Health::down(format!("RabbitMQ at {}: {e}", self.options.uri.redacted())),
            _ => Health::down(format!("RabbitMQ at {}: not connected", self.options.uri.redacted())),
        }
    }

    /// Replaces anything that could be the password in a client error message.
    pub(crate) fn scrub(&self, message: impl std::fmt::Display) -> String {
        let message = message.to_string();
        match self.options.uri.parse() {
            Ok(uri) if !uri.authority.userinfo.password.is_empty() => {
                message.replace(&uri.authority.userinfo.password, "***")
            }
            _ => message,
        }
    }

    async fn connect(&self) -> std::result::Result<Connection, String> {
        let mut props = ConnectionProperties::default();
        if let Some(name) = &self.options.connection_name {
            props = props.with_connection_name(name.as_str().into());
        }
        let uri = self.options.uri.parse()?;
        let tls = uri.scheme == AMQPScheme::AMQPS;
        let runtime = lapin::runtime::default_runtime().map_err(|e| self.scrub(e))?;
        let connect = Connection::connect_uri_with_config(uri, props, self.tls.clone(), runtime);
        match tokio::time::timeout(self.options.connect_timeout, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) if tls => Err(self.explain_tls(self.scrub(e))),
            Ok(Err(e)) => Err(self.scrub(e)),
            Err(_) => Err(format!("no connection within {:?}", self.options.connect_timeout)),
        }
    }

    /// Says what to do when the TLS handshake failed over a certificate: rustls reports it as
    /// `invalid peer certificate: UnknownIssuer` or `received fatal alert: CertificateRequired`
    /// and the like, which does not name the setting to change.
    fn explain_tls(&self, why: String) -> String {
        let lower = why.to_ascii_lowercase();
        if lower.contains("invalid peer certificate") {
            return match &self.options.tls_ca_file {
                None => format!(
                    "TLS handshake failed, the broker's certificate is not trusted ({why}); if a private CA signed \
                     it, set `tls-ca-file` to that CA's PEM file"
                ),
                Some(ca) => format!(
                    "TLS handshake failed, the broker's certificate is not trusted ({why}); check that \
                     `tls-ca-file` ({}) holds the CA that signed it and that the certificate names the host of `uri`",
                    ca.display()
                ),
            };
        }
        if lower.contains("alert") && lower.contains("certificate") {
            return match &self.options.tls_cert_file {
                None => format!(
                    "TLS handshake failed, the broker wants a client certificate ({why}); set `tls-cert-file` and \
                     `tls-key-file`"
                ),
                Some(cert) => format!(
                    "TLS handshake failed, the broker refused the client certificate ({why}); check `tls-cert-file` \
                     ({}) and `tls-key-file`",
                    cert.display()
                ),
            };
        }
        why
    }

    async fn supervise(self: Arc<Self>) {
        let uri = self.options.uri.redacted();
        let mut delay = self.options.reconnect_initial;
        let mut generation = 0u64;
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            match self.connect().await {
                Ok(conn) => {
                    delay = self.options.reconnect_initial;
                    generation += 1;
                    let conn = Arc::new(conn);
                    let mut events = conn.events_listener();
                    tracing::info!(binder = %self.binder, %uri, generation, "connected to RabbitMQ");
                    self.link.send_replace(Link { generation, connection: Some(conn.clone()), error: None });
                    let why = loop {
                        tokio::select! {
                            event = events.next() => match event {
                                Some(Event::Error(e)) => break self.scrub(e),
                                Some(_) => {}
                                None => break "connection closed".to_string(),
                            },
                            _ = self.broken.notified() => {
                                if !conn.status().connected() {
                                    break "connection lost".to_string();
                                }
                            }
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                                if !conn.status().connected() {
                                    break "connection lost".to_string();
                                }
                            }
                            _ = self.shutdown.cancelled() => {
                                self.link.send_replace(Link { generation, connection: None, error: Some("binder shut down".into()) });
                                let _ = tokio::time::timeout(Duration::from_secs(5), conn.close(200, "bindery shutdown".into())).await;
                                return;
                            }
                        }
                    };
                    tracing::warn!(binder = %self.binder, %uri, reason = %why, "lost the RabbitMQ connection; reconnecting");
                    self.link.send_replace(Link { generation, connection: None, error: Some(why) });
                }
                Err(why) => {
                    tracing::warn!(binder = %self.binder, %uri, reason = %why, retry_in = ?delay, "cannot connect to RabbitMQ; retrying");
                    self.link.send_modify(|l| l.error = Some(why));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => break,
            }
            delay = (delay * 2).min(self.options.reconnect_max);
        }
        self.link.send_modify(|l| {
            l.connection = None;
            l.error = Some("binder shut down".into());
        });
    }

    pub(crate) async fn shutdown(&self) {
        self.shutdown.cancel();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
