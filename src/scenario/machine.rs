//! Where a scenario's machine comes from: a topology file (relative to the scenario, or
//! `builtin:NAME`) or a generator, exactly one of them.

use super::ScenarioFile;
use crate::input::InputError;
use crate::machine::topology::{Topology, file as topology_file};
use std::path::Path;

impl ScenarioFile {
    /// The machine, or None with what is wrong added to `problems`.
    pub(super) fn load_topology(
        &self,
        base: Option<&Path>,
        problems: &mut Vec<(String, String)>,
    ) -> Result<Option<Topology>, InputError> {
        match (&self.machine.topology, &self.machine.generator) {
            (Some(_), Some(_)) | (None, None) => {
                problems.push((
                    "machine".into(),
                    "give exactly one of `topology` (a file or builtin:NAME) and `generator`"
                        .into(),
                ));
                Ok(None)
            }
            (None, Some(g)) => match g.build() {
                Ok(t) => Ok(Some(t)),
                Err(ps) => {
                    problems.extend(
                        ps.into_iter()
                            .map(|(k, m)| (format!("machine.generator.{k}"), m)),
                    );
                    Ok(None)
                }
            },
            (Some(spec), None) => {
                let resolved = match (spec.starts_with("builtin:"), base) {
                    (true, _) => spec.clone(),
                    (false, Some(dir)) => dir.join(spec).to_string_lossy().into_owned(),
                    (false, None) => {
                        // A built-in scenario names its topology by the shipped file name; any
                        // other file (e.g. given with --set) is read from where it says.
                        let name = Path::new(spec)
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        if topology_file::BUILTIN.iter().any(|(n, _)| *n == name) {
                            format!("builtin:{name}")
                        } else {
                            spec.clone()
                        }
                    }
                };
                match topology_file::load(&resolved) {
                    Ok(t) => Ok(Some(t)),
                    Err(InputError::Io { path, cause: e }) => {
                        problems.push((
                            "machine.topology".into(),
                            format!("cannot read topology file {}: {e}", path.display()),
                        ));
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}
