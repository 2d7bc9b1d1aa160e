//! Where a process stands in a run across processes: its rank and the number of ranks, from
//! the launcher that started it (Slurm's `srun`, an MPI launcher, or asgd-sim itself), and the
//! coordinator's address.

use super::ProcessesError;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::Command;

/// Starts rank `rank` of `world` on this host, given the coordinator's address: the
/// command to run (asgd-sim itself, with the same scenario and overrides).
pub type Spawn = Box<dyn Fn(usize, usize, SocketAddr) -> Command>;

/// This process's place in the run.
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    /// The coordinator's address (for a run asgd-sim starts itself, where it will listen:
    /// port 0 picks a free one).
    pub coordinator: SocketAddr,
    /// Who said so, for messages: "Slurm (SLURM_PROCID/SLURM_NTASKS)", ...
    pub from: String,
    /// Set where this process is rank 0 of a run it starts itself on this host: how to start
    /// the other ranks.
    pub spawn: Option<Spawn>,
}

/// The launchers whose variables give a rank and a number of ranks, in the order they are
/// looked for.
const LAUNCHERS: [(&str, &str, &str); 4] = [
    ("asgd-sim", "ASGD_SIM_RANK", "ASGD_SIM_WORLD"),
    ("Slurm", "SLURM_PROCID", "SLURM_NTASKS"),
    ("Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("MPICH/Hydra", "PMI_RANK", "PMI_SIZE"),
];

impl Launch {
    /// The launch the environment describes: a launcher's rank and size, with the
    /// coordinator at `ASGD_SIM_COORDINATOR` (host:port) or `MASTER_ADDR` and `MASTER_PORT`;
    /// or, where no launcher started more than one process, a run that this process (rank 0)
    /// starts on this host with `spawn`.
    pub fn from_env(spawn: Spawn) -> Result<Launch, ProcessesError> {
        Launch::from_vars(|k| std::env::var(k).ok(), spawn)
    }

    /// [`Launch::from_env`] with the variables read by `var`.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        spawn: Spawn,
    ) -> Result<Launch, ProcessesError> {
        let bad = |m: String| ProcessesError::Launch(m);
        for (who, rank_key, world_key) in LAUNCHERS {
            let (Some(rank), Some(world)) = (var(rank_key), var(world_key)) else {
                continue;
            };
            let number = |key: &str, text: &str| {
                text.trim().parse::<usize>().map_err(|_| {
                    bad(format!(
                        "{key}={text:?} is not a whole number (set by {who}; it must be one)"
                    ))
                })
            };
            let (rank, world) = (number(rank_key, &rank)?, number(world_key, &world)?);
            if world == 0 || rank >= world {
                return Err(bad(format!(
                    "{rank_key}={rank} with {world_key}={world}: a rank must be below the \
                     number of ranks"
                )));
            }
            if world == 1 {
                // One task: asgd-sim starts the others itself.
                break;
            }
            let from = format!("{who} ({rank_key}/{world_key})");
            let coordinator = coordinator(&var, &from)?;
            return Ok(Launch {
                rank,
                world,
                coordinator,
                from,
                spawn: None,
            });
        }
        Ok(Launch {
            rank: 0,
            world: 0,
            coordinator: SocketAddr::from(([127, 0, 0, 1], 0)),
            from: "asgd-sim".into(),
            spawn: Some(spawn),
        })
    }
}

/// The coordinator's address from the environment.
fn coordinator(
    var: &impl Fn(&str) -> Option<String>,
    from: &str,
) -> Result<SocketAddr, ProcessesError> {
    let (text, key) = match (var("ASGD_SIM_COORDINATOR"), var("MASTER_ADDR")) {
        (Some(a), _) => (a, "ASGD_SIM_COORDINATOR"),
        (None, Some(host)) => match var("MASTER_PORT") {
            Some(port) => (format!("{host}:{port}"), "MASTER_ADDR/MASTER_PORT"),
            None => {
                return Err(ProcessesError::Launch(
                    "MASTER_ADDR is set but MASTER_PORT is not: set both, or \
                     ASGD_SIM_COORDINATOR=host:port"
                        .into(),
                ));
            }
        },
        (None, None) => {
            return Err(ProcessesError::Launch(format!(
                "{from} started this process as one of several ranks, but no coordinator \
                 address is set: set ASGD_SIM_COORDINATOR=host:port to an address of rank 0's \
                 node and a free port, e.g. ASGD_SIM_COORDINATOR=$(hostname):29500"
            )));
        }
    };
    let addrs = text.to_socket_addrs().map_err(|e| {
        ProcessesError::Launch(format!(
            "{key}={text:?}: not a host:port this machine can resolve ({e})"
        ))
    })?;
    let mut addrs: Vec<SocketAddr> = addrs.collect();
    // IPv4 first: the address every rank's host is likeliest to reach.
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| ProcessesError::Launch(format!("{key}={text:?}: resolves to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Launch, ProcessesError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let spawn: Spawn = Box::new(|_, _, _| Command::new("true"));
        Launch::from_vars(|k| vars.get(k).cloned(), spawn)
    }

    #[test]
    fn slurm_gives_the_rank_and_the_coordinator_the_address() {
        let l = launch(&[
            ("SLURM_PROCID", "3"),
            ("SLURM_NTASKS", "6"),
            ("ASGD_SIM_COORDINATOR", "127.0.0.1:29500"),
        ])
        .unwrap();
        assert_eq!((l.rank, l.world), (3, 6));
        assert_eq!(l.coordinator, SocketAddr::from(([127, 0, 0, 1], 29500)));
        assert!(l.spawn.is_none());
        assert!(l.from.contains("SLURM_PROCID"));
    }

    #[test]
    fn open_mpi_and_torch_style_variables_are_read() {
        let l = launch(&[
            ("OMPI_COMM_WORLD_RANK", "0"),
            ("OMPI_COMM_WORLD_SIZE", "4"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "4000"),
        ])
        .unwrap();
        assert_eq!((l.rank, l.world, l.coordinator.port()), (0, 4, 4000));
    }

    #[test]
    fn no_launcher_or_one_task_means_asgd_sim_starts_the_ranks() {
        for vars in [&[][..], &[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")][..]] {
            let l = launch(vars).unwrap();
            assert_eq!(l.rank, 0);
            assert!(l.spawn.is_some());
        }
    }

    #[test]
    fn a_launch_without_a_coordinator_or_with_a_bad_rank_says_what_to_set() {
        let e = launch(&[("SLURM_PROCID", "1"), ("SLURM_NTASKS", "4")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ASGD_SIM_COORDINATOR=host:port"), "{e}");
        let e = launch(&[("PMI_RANK", "4"), ("PMI_SIZE", "4")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("PMI_RANK=4") && e.contains("below"), "{e}");
        let e = launch(&[("PMI_RANK", "x"), ("PMI_SIZE", "4")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a whole number"), "{e}");
        let e = launch(&[
            ("PMI_RANK", "1"),
            ("PMI_SIZE", "4"),
            ("ASGD_SIM_COORDINATOR", "no port here"),
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("ASGD_SIM_COORDINATOR"), "{e}");
    }
}
