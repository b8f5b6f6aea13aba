//! systemd's notify protocol as systemd runs the daemon: `$NOTIFY_SOCKET` a
//! unix datagram socket bound by the test, `$WATCHDOG_USEC` and
//! `$WATCHDOG_PID` (the daemon's own pid) set. The real binary; the
//! messages read from the socket.

use crate::daemon_support;

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daemon_support::{daemon, pm25_rule};

const NEVER: &str = "0 0 9 1 1 *";

/// Every datagram received, with when it came.
type Received = Arc<Mutex<Vec<(Instant, String)>>>;

fn listen(socket: UnixDatagram) -> Received {
    let got: Received = Arc::default();
    let out = got.clone();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Until the test lets go of what was received.
        while Arc::strong_count(&out) > 1 {
            match socket.recv(&mut buf) {
                Ok(n) => out.lock().unwrap().push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                )),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    });
    got
}

fn count(got: &Received, line: &str) -> usize {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == line))
        .count()
}

#[test]
fn ready_status_and_watchdog_pings_reach_the_notify_socket() {
    let sockets = tempfile::tempdir().unwrap();
    let path = sockets.path().join("notify.sock");
    let got = listen(UnixDatagram::bind(&path).unwrap());
    // WatchdogSec=4s: pings every 2 s.
    let mut d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "4000000")
        .pid_env("WATCHDOG_PID")
        .start();

    // READY=1 after the first load, with the status line saying so.
    d.wait_for(10, "READY=1", |_| {
        (count(&got, "READY=1") > 0).then_some(())
    });
    let ready = got
        .lock()
        .unwrap()
        .iter()
        .find(|(_, m)| m.lines().any(|l| l == "READY=1"))
        .map(|(_, m)| m.clone())
        .unwrap();
    assert!(ready.contains("STATUS=1 rules loaded"), "{ready:?}");
    assert_eq!(count(&got, "READY=1"), 1);

    // Pings keep coming: at least 4 in a generous 30 s (one every 2 s
    // is 15), each with a status line.
    d.wait_for(30, "four WATCHDOG=1 pings", |_| {
        (count(&got, "WATCHDOG=1") >= 4).then_some(())
    });
    for (_, m) in got.lock().unwrap().iter() {
        if m.lines().any(|l| l == "WATCHDOG=1") {
            assert!(m.contains("STATUS=1 rules loaded"), "{m:?}");
        }
    }
    assert!(d.logs().contains("systemd watchdog"), "{}", d.logs());

    // A config reload that fails shows in the status line.
    let config = d.path("rulewatch.ron");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("admin: [", "admin: [[")).unwrap();
    d.signal("HUP");
    d.wait_for(10, "the failed reload in STATUS=", |_| {
        got.lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains("STATUS=1 rules loaded, config reload failed"))
            .then_some(())
    });

    // STOPPING=1 on SIGTERM.
    d.signal("TERM");
    assert_eq!(d.wait_exit(20).code(), Some(0));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&got, "STOPPING=1"), 1);
}

#[test]
fn no_pings_when_the_watchdog_is_meant_for_another_process() {
    let sockets = tempfile::tempdir().unwrap();
    let path = sockets.path().join("notify.sock");
    let got = listen(UnixDatagram::bind(&path).unwrap());
    // `$WATCHDOG_PID` names another process (as a child of a supervised
    // process would inherit it): READY=1 still, but no pings.
    let d = daemon()
        .rule("pm25.rhai", pm25_rule("pm25-high", "v1", NEVER))
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "2000000")
        .env("WATCHDOG_PID", "1")
        .start();
    d.wait_for(10, "READY=1", |_| {
        (count(&got, "READY=1") > 0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(&got, "WATCHDOG=1"), 0);
    assert!(!d.logs().contains("systemd watchdog"));
}
