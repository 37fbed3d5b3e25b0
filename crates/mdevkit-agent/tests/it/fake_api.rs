//! A fake Kubernetes API server on 127.0.0.1, enough for the agent: one Node (get, watch
//! as a chunked stream of JSON watch events, JSON merge patches of its labels) and Event
//! creation. It records every call as (verb, resource) and every value the state label
//! took, and can be stopped and started again on the same port (an API server restart).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const NODE: &str = "node-1";

/// What the server holds and saw.
#[derive(Default)]
pub struct Cluster {
    pub node: Value,
    version: u64,
    /// Every (verb, resource) requested.
    pub calls: BTreeSet<(String, String)>,
    /// Every value a patch gave `state_key`, in order.
    pub states: Vec<String>,
    pub events: Vec<Value>,
    watchers: Vec<mpsc::Sender<Value>>,
    /// Watch connections, shut down by `stop`.
    streams: Vec<TcpStream>,
    state_key: String,
}

impl Cluster {
    /// Bumps the resource version and tells every watcher.
    fn modified(&mut self) {
        self.version += 1;
        self.node["metadata"]["resourceVersion"] = json!(self.version.to_string());
        let event = json!({"type": "MODIFIED", "object": self.node});
        self.watchers.retain(|w| w.send(event.clone()).is_ok());
    }
}

pub struct FakeApi {
    pub addr: SocketAddr,
    shared: Arc<(Mutex<Cluster>, Condvar)>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl FakeApi {
    pub fn start(state_key: &str) -> FakeApi {
        let cluster = Cluster {
            node: json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": NODE, "uid": "8d7c1f0e-0000-4000-8000-000000000001",
                             "resourceVersion": "1", "labels": {"kubernetes.io/hostname": NODE}},
                "spec": {},
            }),
            version: 1,
            state_key: state_key.to_owned(),
            ..Cluster::default()
        };
        let mut api = FakeApi {
            addr: "127.0.0.1:0".parse().unwrap(),
            shared: Arc::new((Mutex::new(cluster), Condvar::new())),
            running: None,
        };
        api.listen();
        api
    }

    fn listen(&mut self) {
        let listener = TcpListener::bind(self.addr).unwrap();
        self.addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (self.shared.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        self.running = Some((stop, accept));
    }

    /// Stops listening and breaks every connection, as a crashed API server would.
    pub fn stop(&mut self) {
        let Some((stop, accept)) = self.running.take() else {
            return;
        };
        stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        accept.join().unwrap();
        // Not `unwrap`: a failed assertion may have poisoned it, and this runs in drop.
        let mut c = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        c.watchers.clear();
        for s in c.streams.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Listens again on the same port, with the same cluster state.
    pub fn restart(&mut self) {
        self.listen();
    }

    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\nusers:\n- name: agent\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: agent}}\ncurrent-context: fake\n",
            self.addr
        )
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Cluster) -> T) -> T {
        let mut c = self.shared.0.lock().unwrap();
        let out = f(&mut c);
        self.shared.1.notify_all();
        out
    }

    /// Sets (or with None removes) a label, as `kubectl label node` does.
    pub fn label(&self, key: &str, value: Option<&str>) {
        self.with(|c| {
            let labels = &mut c.node["metadata"]["labels"];
            match value {
                Some(v) => labels[key] = json!(v),
                None => {
                    labels.as_object_mut().unwrap().remove(key);
                }
            }
            c.modified();
        });
    }

    /// Waits (at most a generous minute, to catch hangs) until `done` holds.
    pub fn wait_for(&self, what: &str, done: impl Fn(&Cluster) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (lock, cond) = &*self.shared;
        let mut c = lock.lock().unwrap();
        while !done(&c) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; states {:?}, events {:#?}",
                c.states,
                c.events
            );
            c = cond.wait_timeout(c, left).unwrap().0;
        }
    }

    /// Waits until the state label has been set `n` times in all; returns those values.
    pub fn wait_states(&self, n: usize) -> Vec<String> {
        self.wait_for(&format!("{n} state patches"), |c| c.states.len() >= n);
        self.with(|c| c.states.clone())
    }

    /// The reason and message of the last Event.
    pub fn last_event(&self) -> (String, String) {
        self.with(|c| {
            let e = c.events.last().expect("no event recorded");
            (
                e["reason"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Vec<u8>,
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let (mut length, mut content_type) = (0usize, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "content-type" => content_type = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        content_type,
        body,
    })
}

fn respond(mut conn: &TcpStream, status: &str, body: &Value) {
    let body = body.to_string();
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn not_found(conn: &TcpStream, what: &str) {
    respond(
        conn,
        "404 Not Found",
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
    );
}

/// RFC 7386 merge of `patch` into `target`.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn serve(conn: TcpStream, shared: &(Mutex<Cluster>, Condvar)) {
    let Some(req) = read_request(&conn) else {
        return;
    };
    let node_path = format!("/api/v1/nodes/{NODE}");
    let watching = req.query.split('&').any(|p| p == "watch=true");
    let (lock, cond) = shared;
    let call = |verb: &str, resource: &str| {
        lock.lock()
            .unwrap()
            .calls
            .insert((verb.to_owned(), resource.to_owned()));
        cond.notify_all();
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", p) if p == node_path => {
            call("get", "nodes");
            let node = lock.lock().unwrap().node.clone();
            respond(&conn, "200 OK", &node);
        }
        ("GET", "/api/v1/nodes") if watching => {
            call("watch", "nodes");
            assert!(
                req.query
                    .contains(&format!("fieldSelector=metadata.name%3D{NODE}")),
                "{}",
                req.query
            );
            watch(conn, &req, lock);
        }
        ("PATCH", p) if p == node_path => {
            call("patch", "nodes");
            assert_eq!(req.content_type, "application/merge-patch+json");
            let patch: Value = serde_json::from_slice(&req.body).unwrap();
            let mut c = lock.lock().unwrap();
            merge(&mut c.node, &patch);
            let key = c.state_key.clone();
            if let Some(v) = patch["metadata"]["labels"][&key].as_str() {
                c.states.push(v.to_owned());
            }
            c.modified();
            let node = c.node.clone();
            drop(c);
            cond.notify_all();
            respond(&conn, "200 OK", &node);
        }
        ("POST", "/api/v1/namespaces/default/events") => {
            call("create", "events");
            let mut event: Value = serde_json::from_slice(&req.body).unwrap();
            event["metadata"]["name"] =
                json!(format!("{NODE}.{}", lock.lock().unwrap().events.len()));
            lock.lock().unwrap().events.push(event.clone());
            cond.notify_all();
            respond(&conn, "201 Created", &event);
        }
        (m, p) => not_found(&conn, &format!("{m} {p}")),
    }
}

/// Streams watch events as chunked JSON lines until the server stops or the client goes.
fn watch(mut conn: TcpStream, req: &Request, lock: &Mutex<Cluster>) {
    let since: u64 = req
        .query
        .split('&')
        .find_map(|p| p.strip_prefix("resourceVersion="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel();
    {
        let mut c = lock.lock().unwrap();
        if c.version > since {
            // Changes the client missed: the node as it is now stands for them.
            tx.send(json!({"type": "MODIFIED", "object": c.node}))
                .unwrap();
        }
        c.watchers.push(tx);
        c.streams.push(conn.try_clone().unwrap());
    }
    if write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return;
    }
    for event in rx {
        let line = format!("{event}\n");
        if write!(conn, "{:x}\r\n{line}\r\n", line.len()).is_err() || conn.flush().is_err() {
            return;
        }
    }
    let _ = write!(conn, "0\r\n\r\n");
}
