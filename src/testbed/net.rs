//! Building the testbed with iproute2: a namespace per host, a switch namespace holding a Linux
//! bridge, one veth pair per port (the host's `eth0`, the switch's `pN`), and each port's rate
//! set by tc on both of its egresses. Every name it makes starts with `asgd<pid>-`, every
//! address is inside 10.77.0.0/24 in its own namespaces, and dropping the [`Testbed`] deletes
//! the namespaces, which takes their veths and qdiscs with them.

use super::TestbedError;
use super::plan::Plan;
use std::net::Ipv4Addr;
use std::process::Command;

/// How a port shares its rate among the hosts whose traffic meets there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    /// `htb` with one class per peer host (rate = port / peers, ceil = port): the switch
    /// shares max-min fairly among hosts, as the simulator's network does among flows.
    Fair,
    /// `tbf`: one first-in first-out queue at the port's rate; TCP decides the shares.
    Fifo,
}

impl Sharing {
    pub fn name(self) -> &'static str {
        match self {
            Sharing::Fair => "fair",
            Sharing::Fifo => "fifo",
        }
    }
}

/// A built testbed; dropping it tears everything down.
pub struct Testbed {
    pub plan: Plan,
    pub sharing: Sharing,
    prefix: String,
    /// Namespaces made so far, switch first; deleted in reverse.
    made: Vec<String>,
}

/// The host `h`'s address.
pub fn address(h: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, h as u8 + 1)
}

impl Testbed {
    /// Builds `plan` on this machine: needs root, `ip` and `tc`. On any failure what was made
    /// is deleted before the error returns.
    pub fn build(plan: Plan, sharing: Sharing) -> Result<Self, TestbedError> {
        check_can_build()?;
        remove_stale();
        let mut tb = Testbed {
            plan,
            sharing,
            prefix: format!("asgd{}", std::process::id()),
            made: vec![],
        };
        let sw = tb.switch_namespace();
        tb.add_namespace(&sw)?;
        ip(&sw, &["link", "add", "br0", "type", "bridge"])?;
        ip(&sw, &["link", "set", "br0", "up"])?;
        for h in 0..tb.plan.hosts.len() {
            let ns = tb.namespace(h);
            tb.add_namespace(&ns)?;
            let port = format!("p{h}");
            ip(
                &ns,
                &[
                    "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &sw,
                ],
            )?;
            ip(
                &ns,
                &["addr", "add", &format!("{}/24", address(h)), "dev", "eth0"],
            )?;
            // One frame per packet: with segmentation offload a packet of up to 64 kB would
            // pass a shaper at once and leave it in debt, so that a message smaller than that
            // would cross at the host's speed, not the port's.
            for (space, dev) in [(&ns, "eth0"), (&sw, port.as_str())] {
                ip(space, &["link", "set", dev, "gso_max_segs", "1"])?;
                ip(space, &["link", "set", dev, "gso_max_size", "1514"])?;
            }
            ip(&ns, &["link", "set", "eth0", "up"])?;
            ip(&sw, &["link", "set", &port, "master", "br0"])?;
            ip(&sw, &["link", "set", &port, "up"])?;
        }
        for h in 0..tb.plan.hosts.len() {
            // The host's own egress carries its traffic to every other host; the switch port's
            // egress carries every other host's traffic to it.
            tb.shape(&tb.namespace(h), "eth0", h, "dst")?;
            tb.shape(&sw, &format!("p{h}"), h, "src")?;
        }
        Ok(tb)
    }

    /// Sets each host's port to `rates[h]` bits per second where it runs at another rate (a
    /// run whose faults slow a host's link), both ways, as [`Testbed::build`] set it.
    pub fn reshape(&mut self, rates: &[u64]) -> Result<(), TestbedError> {
        for (h, &rate) in rates.iter().enumerate() {
            if self
                .plan
                .hosts
                .get(h)
                .is_none_or(|x| x.port_bits_per_s == rate)
            {
                continue;
            }
            self.plan.hosts[h].port_bits_per_s = rate;
            let (ns, sw, port) = (self.namespace(h), self.switch_namespace(), format!("p{h}"));
            tc(&ns, &["qdisc", "del", "dev", "eth0", "root"])?;
            tc(&sw, &["qdisc", "del", "dev", &port, "root"])?;
            self.shape(&ns, "eth0", h, "dst")?;
            self.shape(&sw, &port, h, "src")?;
        }
        Ok(())
    }

    /// The namespace of host `h`, e.g. `asgd4242-h0-learner0`.
    pub fn namespace(&self, h: usize) -> String {
        let name: String = self.plan.hosts[h]
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(24)
            .collect();
        format!("{}-h{h}-{name}", self.prefix)
    }

    pub fn switch_namespace(&self) -> String {
        format!("{}-switch", self.prefix)
    }

    /// `program` run inside host `h`'s namespace.
    pub fn command(&self, h: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.namespace(h)]).arg(program);
        c
    }

    fn add_namespace(&mut self, ns: &str) -> Result<(), TestbedError> {
        run("ip", &["netns", "add", ns])?;
        self.made.push(ns.to_string());
        ip(ns, &["link", "set", "lo", "up"])
    }

    /// Sets the rate of the egress `dev` in `ns` on host `h`'s port; under fair sharing one
    /// class per other host, matched on its address in the `field` (`src` or `dst`).
    fn shape(&self, ns: &str, dev: &str, h: usize, field: &str) -> Result<(), TestbedError> {
        let rate = self.plan.hosts[h].port_bits_per_s;
        let bytes_per_s = rate / 8;
        // A burst of two full frames (or 0.1 ms at the rate, if more): the shaper's
        // high-resolution timer keeps the rate, and a message passes no faster than it.
        let burst = (bytes_per_s / 10_000).max(2 * 1514).to_string();
        let r = format!("{rate}bit");
        match self.sharing {
            Sharing::Fifo => {
                // The queue holds 100 ms at the rate, so TCP's windows fit without loss.
                let limit = (bytes_per_s / 10).max(64 * 1024).to_string();
                tc(
                    ns,
                    &[
                        "qdisc", "add", "dev", dev, "root", "tbf", "rate", &r, "burst", &burst,
                        "limit", &limit,
                    ],
                )
            }
            Sharing::Fair => {
                let peers: Vec<usize> = (0..self.plan.hosts.len()).filter(|&j| j != h).collect();
                let share = format!("{}bit", (rate / peers.len() as u64).max(8_000));
                tc(
                    ns,
                    &[
                        "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "ff",
                    ],
                )?;
                let class = |id: &str, rate: &str| {
                    tc(
                        ns,
                        &[
                            "class", "add", "dev", dev, "parent", "1:1", "classid", id, "htb",
                            "rate", rate, "ceil", &r, "burst", &burst, "cburst", &burst, "quantum",
                            "1514",
                        ],
                    )
                };
                tc(
                    ns,
                    &[
                        "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb",
                        "rate", &r, "ceil", &r, "burst", &burst, "cburst", &burst,
                    ],
                )?;
                // What matches no peer (ARP, neighbour discovery) gets a small class of its own.
                class("1:ff", "8000bit")?;
                for j in peers {
                    let id = format!("1:{:x}", j + 16);
                    class(&id, &share)?;
                    tc(
                        ns,
                        &[
                            "filter",
                            "add",
                            "dev",
                            dev,
                            "parent",
                            "1:",
                            "protocol",
                            "ip",
                            "prio",
                            "1",
                            "u32",
                            "match",
                            "ip",
                            field,
                            &format!("{}/32", address(j)),
                            "flowid",
                            &id,
                        ],
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for ns in self.made.drain(..).rev() {
            let _ = run("ip", &["netns", "del", &ns]);
        }
    }
}

/// Moves the calling thread into the network namespace `name` (under /run/netns): sockets
/// it opens from now on are that namespace's.
pub fn enter(name: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/run/netns/{name}"))?;
    // SAFETY: setns on a namespace file descriptor held open for the call; it changes only
    // the calling thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Namespaces of the testbeds `asgd-sim` made here whose process is gone (killed before it
/// could tear down): deleted, so that they do not pile up.
fn remove_stale() {
    let Ok(o) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix("asgd")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

fn check_can_build() -> Result<(), TestbedError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(TestbedError::Cannot(
            "the testbed makes network namespaces and sets tc qdiscs, which needs root \
             (run it as root, e.g. with sudo)"
                .into(),
        ));
    }
    for tool in ["ip", "tc"] {
        let found = Command::new(tool)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(TestbedError::Cannot(format!(
                "the testbed needs `{tool}` from iproute2 (Debian: apt-get install iproute2)"
            )));
        }
    }
    Ok(())
}

fn ip(ns: &str, args: &[&str]) -> Result<(), TestbedError> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

fn tc(ns: &str, args: &[&str]) -> Result<(), TestbedError> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("tc", &all)
}

fn run(program: &str, args: &[&str]) -> Result<(), TestbedError> {
    let command = format!("{program} {}", args.join(" "));
    let o = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| TestbedError::System {
            command: command.clone(),
            cause: e.to_string(),
        })?;
    if o.status.success() {
        Ok(())
    } else {
        Err(TestbedError::System {
            command,
            cause: String::from_utf8_lossy(&o.stderr).trim().to_string(),
        })
    }
}
