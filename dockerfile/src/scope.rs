//! The variables in force while a stage is walked before the build (to expand `--from` references and stage
//! instructions): the global ARGs, build args, each ARG and ENV of the stage in order.

use crate::instructions::{ArgDeclaration, Command, CommandExpandError};
use crate::plan::BuildOptions;
use crate::predefined::is_predefined_arg;
use crate::shell::{Environment, Lexer};
use crate::stages::GlobalArg;

/// The variables in force at one point of a stage: ENV values shadow ARG values.
#[derive(Debug, Clone)]
pub(crate) struct StageScope<'a> {
    global_env: &'a [(String, String)],
    global_args: &'a [GlobalArg],
    options: &'a BuildOptions,
    /// The variables in force: the stage's starting ones, then each ARG that has a value and each ENV, in order,
    /// the later one winning (BuildKit keeps both in one environment, so an ARG after an ENV of the same name wins).
    vars: Vec<(String, String)>,
}

impl<'a> StageScope<'a> {
    pub(crate) fn new(
        global_env: &'a [(String, String)],
        global_args: &'a [GlobalArg],
        options: &'a BuildOptions,
        base_env: &[(String, String)],
    ) -> Self {
        StageScope {
            global_env,
            global_args,
            options,
            vars: base_env.to_vec(),
        }
    }

    /// The value an `ARG name[=default]` takes in a stage.
    pub(crate) fn arg_value(
        &self,
        declaration: &ArgDeclaration,
        lexer: &Lexer,
    ) -> Result<Option<String>, CommandExpandError> {
        let name = &declaration.name;
        if let Some(value) = self.options.build_args.get(name) {
            return Ok(Some(value.clone()));
        }
        if let Some(default) = &declaration.default {
            return Ok(Some(lexer.process_word(default, self)?));
        }
        let declared_globally = self
            .global_args
            .iter()
            .any(|global| &global.declaration.name == name);
        if declared_globally || is_predefined_arg(name) {
            return Ok(self
                .global_env
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone()));
        }
        Ok(None)
    }

    pub(crate) fn set(&mut self, name: &str, value: String) {
        self.vars.retain(|(key, _)| key != name);
        self.vars.push((name.to_string(), value));
    }

    /// Records ARG and ENV effects; values that cannot be expanded yet are left unset.
    pub(crate) fn observe(&mut self, command: &Command, lexer: &Lexer) {
        let _ = self.apply(command, lexer);
    }

    /// Records ARG and ENV effects, failing on expansion errors.
    /// Like Docker, every value of one ARG or ENV line is expanded with the variables in force before the
    /// line (`ENV A=1 B=$A` gives B the earlier A).
    pub(crate) fn apply(
        &mut self,
        command: &Command,
        lexer: &Lexer,
    ) -> Result<(), CommandExpandError> {
        match command {
            Command::Arg(arg) => {
                let mut values = Vec::new();
                for declaration in &arg.declarations {
                    if let Some(value) = self.arg_value(declaration, lexer)? {
                        values.push((declaration.name.clone(), value));
                    }
                }
                for (name, value) in values {
                    self.set(&name, value);
                }
            }
            Command::Env(env) => {
                let mut values = Vec::new();
                for variable in &env.variables {
                    let key = lexer.process_word(&variable.key, self)?;
                    values.push((key, lexer.process_word(&variable.value, self)?));
                }
                for (key, value) in values {
                    self.set(&key, value);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Environment for StageScope<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        Environment::get(self.vars.as_slice(), name)
    }
}
