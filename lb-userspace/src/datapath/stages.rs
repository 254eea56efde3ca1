//! Loading the balancer: its entry program and the stages it tail-calls
//! (`lb_common::maps::STAGES`, through the `PROGRAMS` program array). The
//! array is not pinned and is emptied by the kernel when its last file
//! descriptor closes: the `Ebpf` that holds it must live as long as the
//! balancer is attached.

use aya::{
    Ebpf,
    maps::{MapData, ProgramArray},
};
use lb_common::maps::{PROGRAMS, STAGES};

use super::{DatapathError, attach, prog_load::load_program};

/// Loads the balancer and its stages into the kernel and fills `PROGRAMS`.
/// The entry program (`attach::balancer`) is then ready to attach.
pub fn load_balancer(ebpf: &mut Ebpf) -> Result<(), DatapathError> {
    for (_, name) in STAGES {
        load_program(attach::program(ebpf, name)?).map_err(DatapathError::program)?;
    }
    load_program(attach::balancer(ebpf)?).map_err(DatapathError::program)?;
    for (index, name) in STAGES {
        let fd = attach::program(ebpf, name)?
            .fd()
            .map_err(DatapathError::program)?
            .try_clone()?;
        let map = ebpf
            .map_mut(PROGRAMS)
            .ok_or(DatapathError::MissingMap(PROGRAMS))?;
        let mut programs: ProgramArray<&mut MapData> =
            ProgramArray::try_from(map).map_err(DatapathError::map(PROGRAMS))?;
        programs
            .set(index, &fd, 0)
            .map_err(DatapathError::map(PROGRAMS))?;
    }
    Ok(())
}
