//! One type per Dockerfile instruction, with validated flags, and variable expansion of their words.
//!
//! Words are kept as written (quotes and `$VAR` included) until [`Command::expand`] is called with the
//! environment in force at that point of the stage. Like BuildKit, only ADD, ARG (defaults), COPY, ENV, EXPOSE,
//! FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and the `RUN --mount` options are expanded; RUN, CMD,
//! ENTRYPOINT, SHELL and HEALTHCHECK commands are left to the shell at run time.

use std::ops::Range;
use std::time::Duration;

use crate::ast::Heredoc;
use crate::shell::{Environment, ExpandError, Lexer};

use super::mount::{parse_mount, Mount};
use super::ports::{parse_port_spec, PortRange};

/// Where an instruction is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (1-based), heredoc bodies included.
    pub end_line: usize,
    /// Byte range of the instruction line(s) in the source.
    pub span: Range<usize>,
}

/// A typed instruction and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// What the instruction says.
    pub command: Command,
    /// Where it is.
    pub location: Location,
}

/// A command line in shell form (run by the stage's SHELL) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `RUN echo hi`: the text as written.
    Shell(String),
    /// `RUN ["echo", "hi"]`.
    Exec(Vec<String>),
}

/// A `key=value` pair of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The name.
    pub key: String,
    /// The value.
    pub value: String,
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base image or stage name as written.
    pub image: String,
    /// The stage name, lower-cased.
    pub stage_name: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
}

/// `RUN --network` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The default network.
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    /// The default sandbox.
    Sandbox,
    /// Insecure (privileged) execution.
    Insecure,
}

/// `RUN [--mount=…] [--network=…] [--security=…] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub command: CommandLine,
    /// Heredocs whose content is fed to the command (or is the script itself).
    pub heredocs: Vec<Heredoc>,
    /// Parsed `--mount` options. Fields that reference variables are final only after [`Command::expand`].
    pub mounts: Vec<Mount>,
    /// The `--mount` values as written.
    pub mount_specs: Vec<String>,
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--security`.
    pub security: Option<SecurityMode>,
}

/// `CMD command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The default command.
    pub command: CommandLine,
}

/// `ENTRYPOINT command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrypoint {
    /// The entry point.
    pub command: CommandLine,
}

/// `ENV k=v …` (or the old `ENV k v`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// The variables in order.
    pub variables: Vec<KeyValue>,
}

/// One name of an `ARG` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDeclaration {
    /// The argument name.
    pub name: String,
    /// The default value as written, if any.
    pub default: Option<String>,
}

/// `ARG name[=default] …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The declared arguments.
    pub declarations: Vec<ArgDeclaration>,
}

/// `LABEL k=v …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The labels in order.
    pub labels: Vec<KeyValue>,
}

/// `MAINTAINER name` (deprecated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintainer {
    /// The author.
    pub name: String,
}

/// `EXPOSE port[/proto] …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expose {
    /// The port words as written (after expansion: the words they expanded to).
    pub ports: Vec<String>,
}

impl Expose {
    /// The ports parsed (after expansion when they contain variables).
    pub fn port_ranges(&self) -> Result<Vec<PortRange>, String> {
        self.ports
            .iter()
            .map(|port| parse_port_spec(port))
            .collect()
    }
}

/// A source of ADD or COPY: a path (or URL), or an inline heredoc file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path in the context (or stage), or a URL / git reference for ADD.
    Path(String),
    /// A heredoc written inline; its name is the file name.
    Heredoc(Heredoc),
}

/// `ADD [flags] src… dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// The sources.
    pub sources: Vec<Source>,
    /// The destination.
    pub destination: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--checksum` (for URL sources).
    pub checksum: Option<String>,
    /// `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
}

/// `COPY [flags] src… dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The sources.
    pub sources: Vec<Source>,
    /// The destination.
    pub destination: String,
    /// `--from`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
}

/// `VOLUME path…` or `VOLUME ["path", …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Mount points.
    pub paths: Vec<String>,
}

/// `USER user[:group]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User (and group).
    pub user: String,
}

/// `WORKDIR path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workdir {
    /// The directory.
    pub path: String,
}

/// `STOPSIGNAL signal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignal {
    /// The signal name or number.
    pub signal: String,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// Disable any inherited health check.
    None,
    /// Run a command.
    Check {
        /// The test command.
        command: CommandLine,
        /// `--interval`.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

/// `SHELL ["executable", "param", …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    /// The shell command prefix.
    pub shell: Vec<String>,
}

/// `ONBUILD instruction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as written, stored in the image config.
    pub expression: String,
}

/// What an instruction says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// FROM
    From(From),
    /// RUN
    Run(Run),
    /// CMD
    Cmd(Cmd),
    /// ENTRYPOINT
    Entrypoint(Entrypoint),
    /// ENV
    Env(Env),
    /// ARG
    Arg(Arg),
    /// LABEL
    Label(Label),
    /// MAINTAINER
    Maintainer(Maintainer),
    /// EXPOSE
    Expose(Expose),
    /// ADD
    Add(Add),
    /// COPY
    Copy(Copy),
    /// VOLUME
    Volume(Volume),
    /// USER
    User(User),
    /// WORKDIR
    Workdir(Workdir),
    /// STOPSIGNAL
    StopSignal(StopSignal),
    /// HEALTHCHECK
    Healthcheck(Healthcheck),
    /// SHELL
    Shell(Shell),
    /// ONBUILD
    Onbuild(Onbuild),
}

/// An expansion failure; `reason` says what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandExpandError {
    /// A word could not be expanded.
    #[error(transparent)]
    Word(#[from] ExpandError),
    /// An expanded value is invalid (e.g. a `--mount` option).
    #[error("{0}")]
    Invalid(String),
}

impl Command {
    /// The instruction name in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Env(_) => "ENV",
            Command::Arg(_) => "ARG",
            Command::Label(_) => "LABEL",
            Command::Maintainer(_) => "MAINTAINER",
            Command::Expose(_) => "EXPOSE",
            Command::Add(_) => "ADD",
            Command::Copy(_) => "COPY",
            Command::Volume(_) => "VOLUME",
            Command::User(_) => "USER",
            Command::Workdir(_) => "WORKDIR",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Shell(_) => "SHELL",
            Command::Onbuild(_) => "ONBUILD",
        }
    }

    /// Whether the build expands variables in this instruction's words.
    pub fn expands_words(&self) -> bool {
        !matches!(
            self,
            Command::Cmd(_)
                | Command::Entrypoint(_)
                | Command::Healthcheck(_)
                | Command::Shell(_)
                | Command::Onbuild(_)
                | Command::Maintainer(_)
        )
    }

    /// A copy with variables expanded in the words the build expands, using `lexer` and `env`.
    /// RUN keeps its command and only has its `--mount` options expanded (and parsed again).
    pub fn expand(
        &self,
        lexer: &Lexer,
        env: &(impl Environment + ?Sized),
    ) -> Result<Command, CommandExpandError> {
        let word = |text: &str| lexer.process_word(text, env);
        let optional = |text: &Option<String>| text.as_deref().map(word).transpose();
        let words = |texts: &[String]| {
            texts
                .iter()
                .map(|text| word(text))
                .collect::<Result<Vec<_>, _>>()
        };
        // Heredoc files with an unquoted delimiter have variables expanded; quotes stay as written.
        let content_lexer = Lexer {
            skip_process_quotes: true,
            ..*lexer
        };
        let sources = |sources: &[Source]| {
            sources
                .iter()
                .map(|source| match source {
                    Source::Path(path) => word(path).map(Source::Path),
                    Source::Heredoc(heredoc) if heredoc.expand => Ok(Source::Heredoc(Heredoc {
                        content: content_lexer.process_word(&heredoc.content, env)?,
                        ..heredoc.clone()
                    })),
                    Source::Heredoc(heredoc) => Ok(Source::Heredoc(heredoc.clone())),
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let pairs = |pairs: &[KeyValue]| {
            pairs
                .iter()
                .map(|pair| {
                    Ok(KeyValue {
                        key: word(&pair.key)?,
                        value: word(&pair.value)?,
                    })
                })
                .collect::<Result<Vec<_>, ExpandError>>()
        };
        Ok(match self {
            Command::From(from) => Command::From(From {
                image: word(&from.image)?,
                stage_name: from.stage_name.clone(),
                platform: optional(&from.platform)?,
            }),
            Command::Run(run) => {
                let mount_specs = words(&run.mount_specs)?;
                let mounts = mount_specs
                    .iter()
                    .map(|spec| parse_mount(spec))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(CommandExpandError::Invalid)?;
                Command::Run(Run {
                    mounts,
                    mount_specs,
                    ..run.clone()
                })
            }
            Command::Env(env_command) => Command::Env(Env {
                variables: pairs(&env_command.variables)?,
            }),
            Command::Arg(arg) => Command::Arg(Arg {
                declarations: arg
                    .declarations
                    .iter()
                    .map(|declaration| {
                        Ok(ArgDeclaration {
                            name: declaration.name.clone(),
                            default: optional(&declaration.default)?,
                        })
                    })
                    .collect::<Result<Vec<_>, ExpandError>>()?,
            }),
            Command::Label(label) => Command::Label(Label {
                labels: pairs(&label.labels)?,
            }),
            // BuildKit splits EXPOSE's words after expansion: `$PORTS` may be several ports, or none.
            Command::Expose(expose) => Command::Expose(Expose {
                ports: expose
                    .ports
                    .iter()
                    .map(|text| lexer.process_words(text, env))
                    .collect::<Result<Vec<_>, _>>()?
                    .concat(),
            }),
            Command::Add(add) => Command::Add(Add {
                sources: sources(&add.sources)?,
                destination: word(&add.destination)?,
                chown: optional(&add.chown)?,
                chmod: optional(&add.chmod)?,
                checksum: optional(&add.checksum)?,
                excludes: words(&add.excludes)?,
                ..add.clone()
            }),
            Command::Copy(copy) => Command::Copy(Copy {
                sources: sources(&copy.sources)?,
                destination: word(&copy.destination)?,
                // An empty `--from` (as written or expanded) is the build context, as in BuildKit.
                from: optional(&copy.from)?.filter(|from| !from.is_empty()),
                chown: optional(&copy.chown)?,
                chmod: optional(&copy.chmod)?,
                excludes: words(&copy.excludes)?,
                ..copy.clone()
            }),
            Command::Volume(volume) => Command::Volume(Volume {
                paths: words(&volume.paths)?,
            }),
            Command::User(user) => Command::User(User {
                user: word(&user.user)?,
            }),
            Command::Workdir(workdir) => Command::Workdir(Workdir {
                path: word(&workdir.path)?,
            }),
            Command::StopSignal(signal) => Command::StopSignal(StopSignal {
                signal: word(&signal.signal)?,
            }),
            Command::Cmd(_)
            | Command::Entrypoint(_)
            | Command::Healthcheck(_)
            | Command::Shell(_)
            | Command::Onbuild(_)
            | Command::Maintainer(_) => self.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_touches_only_expandable_words() {
        let env = vec![
            ("DIR".to_string(), "/app".to_string()),
            ("V".to_string(), "1".to_string()),
        ];
        let lexer = Lexer::new('\\');
        let copy = Command::Copy(Copy {
            sources: vec![Source::Path("\"$DIR/a b\"".into())],
            destination: "${DIR}/".into(),
            from: Some("stage$V".into()),
            chown: None,
            chmod: None,
            link: false,
            parents: false,
            excludes: vec![],
        });
        let Command::Copy(expanded) = copy.expand(&lexer, &env).unwrap() else {
            panic!("not a copy");
        };
        assert_eq!(expanded.sources, [Source::Path("/app/a b".into())]);
        assert_eq!(expanded.destination, "/app/");
        assert_eq!(expanded.from.as_deref(), Some("stage1"));

        let cmd = Command::Cmd(Cmd {
            command: CommandLine::Shell("echo $DIR".into()),
        });
        assert_eq!(cmd.expand(&lexer, &env).unwrap(), cmd);
        assert!(!cmd.expands_words());
    }

    #[test]
    fn copy_heredocs_expand_unless_quoted() {
        let env = vec![("NAME".to_string(), "lade".to_string())];
        let heredoc = |expand: bool| Heredoc {
            name: "EOF".into(),
            file_descriptor: 0,
            expand,
            chomp: false,
            content: "hello \"$NAME\"\n".into(),
        };
        let copy = |expand: bool| {
            Command::Copy(Copy {
                sources: vec![Source::Heredoc(heredoc(expand))],
                destination: "/greeting".into(),
                from: None,
                chown: None,
                chmod: None,
                link: false,
                parents: false,
                excludes: vec![],
            })
        };
        let content = |command: Command| match command {
            Command::Copy(Copy { sources, .. }) => match &sources[0] {
                Source::Heredoc(heredoc) => heredoc.content.clone(),
                Source::Path(_) => unreachable!("heredoc source"),
            },
            _ => unreachable!("copy"),
        };
        let lexer = Lexer::new('\\');
        assert_eq!(
            content(copy(true).expand(&lexer, &env).unwrap()),
            "hello \"lade\"\n"
        );
        assert_eq!(
            content(copy(false).expand(&lexer, &env).unwrap()),
            "hello \"$NAME\"\n"
        );
    }

    #[test]
    fn run_mounts_are_parsed_after_expansion() {
        let env = vec![("ID".to_string(), "1000".to_string())];
        let run = Command::Run(Run {
            command: CommandLine::Shell("make".into()),
            heredocs: vec![],
            mounts: vec![parse_mount("type=cache,target=/c,uid=$ID").unwrap()],
            mount_specs: vec!["type=cache,target=/c,uid=$ID".into()],
            network: None,
            security: None,
        });
        let Command::Run(expanded) = run.expand(&Lexer::new('\\'), &env).unwrap() else {
            panic!("not a run");
        };
        assert_eq!(expanded.mounts[0].uid, Some(1000));
    }
}
