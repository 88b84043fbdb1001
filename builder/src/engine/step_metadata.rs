//! Config-only steps (ARG, ENV, LABEL, USER, CMD, ENTRYPOINT, WORKDIR `/`, …): the planned env replaces the stage's,
//! and the step's history entry is recorded as an empty layer.

use super::state::{StageEnv, StageState};

/// Applies a config-only step's plan to the stage.
pub(super) fn apply(state: &mut StageState, env: StageEnv, history: Option<String>) {
    state.env = env;
    if let Some(created_by) = history {
        state.env.add_history(created_by, true);
    }
}
