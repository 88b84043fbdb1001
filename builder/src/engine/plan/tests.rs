//! Step planning, checked without a filesystem, runtime or root: cache keys, config edits, history text and
//! multi-stage planning.

use std::collections::BTreeMap;

use layerstore::config::ImageConfig;
use layerstore::Digest;

use super::*;
use crate::engine::base::scratch_config;
use crate::engine::cache::base_key;
use crate::engine::stages::stage_index;
use lade_dockerfile::Instruction;
use lade_dockerfile::{BuildOptions, BuildPlan, Dockerfile, Stages};

/// The build-wide inputs of a test plan.
#[derive(Default)]
struct Setup {
    build_args: BTreeMap<String, String>,
    target: Option<String>,
    entitlements: Entitlements,
    security: Security,
    extra_hosts: Vec<ExtraHost>,
    /// The base's key (default: scratch's).
    base: Option<Digest>,
    /// Each COPY/ADD's source checksum, in order (default: `sources-N`).
    sources: Vec<String>,
}

fn build_plan(dockerfile: &str, setup: &Setup) -> BuildPlan {
    let dockerfile = Dockerfile::parse(dockerfile, "Dockerfile").unwrap();
    let stages = Stages::from_dockerfile(&dockerfile).unwrap();
    let options = BuildOptions {
        build_args: setup.build_args.clone(),
        target: setup.target.clone(),
        platform_args: crate::platform::predefined_args(
            &crate::platform::host(),
            &crate::platform::host(),
        ),
    };
    crate::platform::plan(&stages, &options).unwrap()
}

/// Plans every step of the target stage from scratch (or `setup.base`), recording history as the engine does.
fn plan_steps(dockerfile: &str, setup: &Setup) -> Result<Vec<StepPlan>, StepError> {
    let plan = build_plan(dockerfile, setup);
    let config = scratch_config();
    let vars = config_edit::env(&config);
    let key = setup.base.clone().unwrap_or_else(|| base_key("scratch"));
    let mut env = StageEnv::new(config, (key.clone(), key), &[], vars);
    let settings = PlanSettings {
        build_args: &setup.build_args,
        global_env: &plan.global_env,
        proxy_env: &plan.proxy_env,
        network: Network::default(),
        extra_hosts: &setup.extra_hosts,
        security: &setup.security,
        entitlements: &setup.entitlements,
    };
    let instructions = plan.expand_stage(plan.target, &env.vars).unwrap();
    let mut steps = Vec::new();
    let mut copies = 0;
    for instruction in &instructions {
        let step = plan_one(&settings, &env, instruction, setup, &mut copies)?;
        env = step.env.clone();
        if let Some(created_by) = &step.history {
            env.add_history(created_by.clone(), step.layer.is_none());
        }
        steps.push(step);
    }
    Ok(steps)
}

fn plan_one(
    settings: &PlanSettings<'_>,
    env: &StageEnv,
    instruction: &Instruction,
    setup: &Setup,
    copies: &mut usize,
) -> Result<StepPlan, StepError> {
    let spec = match &instruction.command {
        Command::Copy(copy) => CopySpec::from(copy),
        Command::Add(add) => CopySpec::from(add),
        command => return step(settings, env, command),
    };
    let work = copy_work(env, &spec)?;
    let sources = setup
        .sources
        .get(*copies)
        .cloned()
        .unwrap_or_else(|| format!("sources-{copies}"));
    *copies += 1;
    let digests = SourceDigests {
        sources: match &work.from {
            Some(from) => format!("stage {}", base_key(from)),
            None => sources,
        },
        urls: Vec::new(),
    };
    Ok(copy(env, &spec, work, &digests))
}

fn steps(dockerfile: &str) -> Vec<StepPlan> {
    plan_steps(dockerfile, &Setup::default()).unwrap()
}

/// Each step's key after it (a layer step's key, or the chained key).
fn keys(plans: &[StepPlan]) -> Vec<Digest> {
    plans.iter().map(|p| p.env.key.clone()).collect()
}

fn histories(plans: &[StepPlan]) -> Vec<Option<String>> {
    plans.iter().map(|p| p.history.clone()).collect()
}

fn last_config(plans: &[StepPlan]) -> layerstore::config::ContainerConfig {
    let config: &ImageConfig = &plans.last().unwrap().env.config;
    config.config.clone().unwrap_or_default()
}

fn args(setup: &[(&str, &str)]) -> BTreeMap<String, String> {
    setup
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn history_text_is_buildkits() {
    let plans = steps(concat!(
        "FROM scratch\n",
        "ARG V=1 W\n",
        "ENV A=1 B=\"two words\"\n",
        "LABEL a=b\n",
        "MAINTAINER someone\n",
        "EXPOSE 80 53/udp\n",
        "VOLUME /data /cache\n",
        "USER app\n",
        "WORKDIR /srv\n",
        "WORKDIR app\n",
        "RUN echo $V\n",
        "RUN [\"/bin/true\", \"x\"]\n",
        "COPY a b /dst/\n",
        "ADD archive.tar /\n",
        "SHELL [\"/bin/bash\", \"-c\"]\n",
        "STOPSIGNAL SIGINT\n",
        "HEALTHCHECK --interval=5s --retries=3 CMD true\n",
        "CMD run it\n",
        "ENTRYPOINT [\"/entry\"]\n",
        "ONBUILD RUN later\n",
    ));
    let expected = [
        "ARG V=1 W",
        "ENV A=1 B=two words",
        "LABEL a=b",
        "MAINTAINER someone",
        "EXPOSE map[53/udp:{} 80/tcp:{}]",
        "VOLUME [/data /cache]",
        "USER app",
        "WORKDIR /srv",
        "WORKDIR /srv/app",
        "RUN |2 V=1 W= /bin/sh -c echo $V # buildkit",
        "RUN |2 V=1 W= /bin/true x # buildkit",
        "COPY a b /dst/ # buildkit",
        "ADD archive.tar / # buildkit",
        "SHELL [/bin/bash -c]",
        "STOPSIGNAL SIGINT",
        r#"HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x03'}"#,
        r#"CMD ["/bin/bash" "-c" "run it"]"#,
        r#"ENTRYPOINT ["/entry"]"#,
    ];
    let mut expected: Vec<Option<String>> = expected.iter().map(|t| Some(t.to_string())).collect();
    // ONBUILD records no history entry.
    expected.push(None);
    assert_eq!(histories(&plans), expected);
    let layers: Vec<bool> = plans.iter().map(|p| p.layer.is_some()).collect();
    let expected_layers = [
        false, false, false, false, false, false, false, true, true, true, true, true, true, false,
        false, false, false, false, false,
    ];
    assert_eq!(layers, expected_layers);
}

#[test]
fn config_edits_follow_the_instructions() {
    let plans = steps(concat!(
        "FROM scratch\n",
        "ENV PATH=/bin A=1\n",
        "ENV A=2\n",
        "WORKDIR /srv\n",
        "WORKDIR ../opt/./app\n",
        "USER 1000:1000\n",
        "LABEL a=b \"c d\"=e\n",
        "EXPOSE 8080/tcp 53/udp\n",
        "STOPSIGNAL SIGTERM\n",
        "HEALTHCHECK --interval=5s CMD [\"/check\", \"-q\"]\n",
        "ONBUILD RUN make\n",
        "CMD echo hi\n",
    ));
    let config = last_config(&plans);
    assert_eq!(config.env.unwrap(), ["PATH=/bin", "A=2"]);
    assert_eq!(config.working_dir.as_deref(), Some("/opt/app"));
    assert_eq!(config.user.as_deref(), Some("1000:1000"));
    let labels = config.labels.unwrap();
    assert_eq!((labels["a"].as_str(), labels["c d"].as_str()), ("b", "e"));
    let ports: Vec<&String> = config.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["53/udp", "8080/tcp"]);
    assert_eq!(config.stop_signal.as_deref(), Some("SIGTERM"));
    let healthcheck = config.healthcheck.unwrap();
    assert_eq!(healthcheck.test.unwrap(), ["CMD", "/check", "-q"]);
    assert_eq!(healthcheck.interval, Some(5_000_000_000));
    assert_eq!(config.on_build.unwrap(), ["RUN make"]);
    // Shell form through the default shell; CMD sets ArgsEscaped as BuildKit does.
    assert_eq!(config.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(config.args_escaped, Some(true));
    // Variables for later steps: ENV values, the later one winning.
    let vars = &plans.last().unwrap().env.vars;
    assert!(vars.contains(&("A".to_string(), "2".to_string())));
}

#[test]
fn cmd_and_entrypoint_shell_and_exec_forms() {
    let config = last_config(&steps("FROM scratch\nCMD [\"a\", \"b\"]\nENTRYPOINT run\n"));
    // CMD set in the same stage survives ENTRYPOINT.
    assert_eq!(config.cmd.unwrap(), ["a", "b"]);
    assert_eq!(config.entrypoint.unwrap(), ["/bin/sh", "-c", "run"]);
    let config = last_config(&steps(
        "FROM scratch\nSHELL [\"/bin/ash\", \"-eo\"]\nENTRYPOINT [\"/e\"]\nCMD x y\n",
    ));
    assert_eq!(config.entrypoint.unwrap(), ["/e"]);
    assert_eq!(config.cmd.unwrap(), ["/bin/ash", "-eo", "x y"]);
    // ENTRYPOINT clears a CMD the stage inherited.
    let config = scratch_config();
    let scratch = base_key("scratch");
    let mut env = StageEnv::new(config, (scratch.clone(), scratch), &[], Vec::new());
    env.config.container_config_mut().cmd = Some(vec!["inherited".into()]);
    let plans = plan_steps_from(env, "FROM scratch\nENTRYPOINT [\"/e\"]\n");
    assert_eq!(last_config(&plans).cmd, None);
}

/// Plans a stage's steps from a given env (a base with a config of its own).
fn plan_steps_from(mut env: StageEnv, dockerfile: &str) -> Vec<StepPlan> {
    let setup = Setup::default();
    let plan = build_plan(dockerfile, &setup);
    let settings = PlanSettings {
        build_args: &setup.build_args,
        global_env: &plan.global_env,
        proxy_env: &plan.proxy_env,
        network: Network::default(),
        extra_hosts: &[],
        security: &setup.security,
        entitlements: &setup.entitlements,
    };
    let mut plans = Vec::new();
    for instruction in plan.expand_stage(plan.target, &env.vars).unwrap() {
        let step = plan_one(&settings, &env, &instruction, &setup, &mut 0).unwrap();
        env = step.env.clone();
        plans.push(step);
    }
    plans
}

#[test]
fn keys_are_deterministic_and_layer_keys_come_from_their_inputs() {
    let dockerfile = "FROM scratch\nARG V=1\nENV E=x\nWORKDIR /w\nCOPY . .\nRUN make\n";
    let (one, two) = (steps(dockerfile), steps(dockerfile));
    assert_eq!(keys(&one), keys(&two));
    let mut parent = base_key("scratch");
    for plan in &one {
        if let Some(layer) = &plan.layer {
            assert_eq!(layer.inputs["parent"], parent.to_string());
            assert_eq!(StepCache::key(&layer.inputs), layer.key);
            assert_eq!(plan.env.key, layer.key);
        }
        parent = plan.env.key.clone();
    }
}

#[test]
fn the_key_derivation_is_pinned() {
    // Existing caches (local, and exported with --cache-to) hold these keys: the derivation must not change.
    assert_eq!(
        base_key("scratch").to_string(),
        Digest::sha256_of(b"lade-base v6 scratch").to_string()
    );
    let plans = steps("FROM scratch\nRUN true\n");
    let layer = plans[0].layer.as_ref().unwrap();
    let mut text = String::from("lade-step-v1\n");
    for (name, value) in &layer.inputs {
        text.push_str(&format!("{name} {}:{value}\n", value.len()));
    }
    assert_eq!(layer.key, Digest::sha256_of(text.as_bytes()));
    let names: Vec<&str> = layer.inputs.keys().copied().collect();
    assert_eq!(
        names,
        [
            "env",
            "instruction",
            "mounts",
            "network",
            "parent",
            "parent layers",
            "user",
            "workdir"
        ]
    );
    assert_eq!(
        layer.inputs["instruction"],
        "RUN /bin/sh -c true # buildkit"
    );
    assert_eq!(layer.inputs["env"], format!("PATH={DEFAULT_PATH}"));
    assert_eq!(layer.inputs["network"], format!("{:?}", Network::default()));
    assert_eq!(layer.inputs["workdir"], "/");
    assert_eq!(
        layer.inputs["parent layers"],
        Digest::sha256_of(b"").to_string()
    );
    // Metadata steps chain the key with their text.
    let plans = steps("FROM scratch\nENV A=1\n");
    assert_eq!(
        plans[0].env.key,
        Digest::sha256_of(format!("{}\nENV A=1", base_key("scratch")).as_bytes())
    );
}

#[test]
fn build_args_change_the_keys_of_the_steps_that_see_them() {
    let dockerfile = "FROM scratch\nRUN before\nARG V\nRUN after\n";
    let with = |value: &str| {
        let setup = Setup {
            build_args: args(&[("V", value)]),
            ..Setup::default()
        };
        keys(&plan_steps(dockerfile, &setup).unwrap())
    };
    let (one, two) = (with("1"), with("2"));
    assert_eq!(one[0], two[0], "a step before the ARG does not see it");
    // The ARG's chained text is its declaration; the value reaches the key through what later steps see.
    assert_eq!(one[1], two[1]);
    assert_ne!(one[2], two[2]);
    // A build arg no ARG declares changes nothing.
    let undeclared = Setup {
        build_args: args(&[("OTHER", "x")]),
        ..Setup::default()
    };
    assert_eq!(
        keys(&plan_steps("FROM scratch\nRUN x\n", &undeclared).unwrap()),
        keys(&steps("FROM scratch\nRUN x\n"))
    );
    // The ARG's default counts when no build arg is given.
    assert_ne!(
        keys(&steps("FROM scratch\nARG V=1\nRUN x\n")),
        keys(&steps("FROM scratch\nARG V=2\nRUN x\n"))
    );
}

#[test]
fn env_user_and_shell_chain_into_later_keys_but_label_and_cmd_do_not() {
    let run_key = |middle: &str| {
        let plans = steps(&format!("FROM scratch\n{middle}\nRUN x\n"));
        plans.last().unwrap().env.key.clone()
    };
    let plain = steps("FROM scratch\nRUN x\n")[0].env.key.clone();
    for changes in [
        "ENV A=1",
        "USER app",
        "SHELL [\"/bin/bash\", \"-c\"]",
        "ARG A",
    ] {
        assert_ne!(run_key(changes), plain, "{changes}");
    }
    assert_ne!(run_key("ENV A=1"), run_key("ENV A=2"));
    for neutral in [
        "LABEL a=b",
        "CMD x",
        "ENTRYPOINT x",
        "EXPOSE 80",
        "STOPSIGNAL SIGINT",
        "ONBUILD RUN y",
        "HEALTHCHECK CMD true",
        "VOLUME /v",
    ] {
        assert_eq!(run_key(neutral), plain, "{neutral}");
    }
}

#[test]
fn copy_keys_change_with_the_sources_checksum_only() {
    let dockerfile = "FROM scratch\nCOPY . /app\nRUN make\n";
    let with = |checksum: &str| {
        let setup = Setup {
            sources: vec![checksum.to_string()],
            ..Setup::default()
        };
        plan_steps(dockerfile, &setup).unwrap()
    };
    let (one, same, other) = (with("sha256:a"), with("sha256:a"), with("sha256:b"));
    assert_eq!(keys(&one), keys(&same));
    assert_ne!(keys(&one)[0], keys(&other)[0]);
    assert_ne!(keys(&one)[1], keys(&other)[1], "later steps follow");
    let inputs = &one[0].layer.as_ref().unwrap().inputs;
    assert_eq!(inputs["sources"], "sha256:a");
    assert_eq!(
        inputs["instruction"],
        "COPY . /app # buildkit chown=None chmod=None exclude=[] parents=false workdir=/"
    );
    // Flags and the working directory are inputs too.
    let key = |dockerfile: &str| keys(&steps(dockerfile))[0].clone();
    let base = key("FROM scratch\nCOPY a b\n");
    assert_ne!(key("FROM scratch\nCOPY --chown=1:1 a b\n"), base);
    assert_ne!(key("FROM scratch\nCOPY --chmod=644 a b\n"), base);
    assert_ne!(key("FROM scratch\nCOPY --exclude=*.o a b\n"), base);
    assert_ne!(
        keys(&steps("FROM scratch\nWORKDIR /w\nCOPY a b\n"))[1],
        base
    );
    // A URL's digest is an input of ADD.
    let plans = steps("FROM scratch\nADD archive.tar /\n");
    let Some(LayerPlan {
        work: Work::Copy(work),
        ..
    }) = &plans[0].layer
    else {
        panic!("ADD plans a copy");
    };
    assert!(work.options.unpack_archives);
}

#[test]
fn add_urls_and_heredocs_are_sorted_out_before_planning() {
    let plans = steps("FROM scratch\nADD https://example.com/a.tgz local /d/\n");
    let Some(LayerPlan {
        work: Work::Copy(work),
        ..
    }) = &plans[0].layer
    else {
        panic!("ADD plans a copy");
    };
    assert_eq!(work.urls, ["https://example.com/a.tgz"]);
    assert_eq!(work.paths, ["local"]);
    let env = plans[0].env.clone();
    let spec = CopySpec {
        name: "ADD",
        sources: &[Source::Path("https://example.com/a".into())],
        destination: "/",
        chown: None,
        chmod: None,
        excludes: &[],
        from: None,
        parents: false,
        checksum: None,
        is_add: true,
    };
    let work = copy_work(&env, &spec).unwrap();
    let digests = |digest: &str| SourceDigests {
        sources: "none".into(),
        urls: vec![(
            "https://example.com/a".into(),
            Digest::sha256_of(digest.as_bytes()),
        )],
    };
    let one = copy(&env, &spec, work.clone(), &digests("one"));
    let two = copy(&env, &spec, work, &digests("two"));
    assert_ne!(one.env.key, two.env.key);
    let plans = steps("FROM scratch\nCOPY <<EOF /greeting\nhello\nEOF\n");
    let Some(LayerPlan {
        work: Work::Copy(work),
        ..
    }) = &plans[0].layer
    else {
        panic!("COPY plans a copy");
    };
    assert_eq!(work.heredocs, [("EOF".to_string(), "hello\n".to_string())]);
    assert_eq!(
        plans[0].history.as_deref(),
        Some("COPY <<EOF /greeting # buildkit")
    );
}

#[test]
fn run_keys_change_with_text_mounts_network_hosts_and_sandbox() {
    let key = |dockerfile: &str, setup: &Setup| {
        plan_steps(dockerfile, setup)
            .unwrap()
            .last()
            .unwrap()
            .env
            .key
            .clone()
    };
    let setup = Setup::default();
    let base = key("FROM scratch\nRUN make\n", &setup);
    assert_eq!(key("FROM scratch\nRUN make\n", &setup), base);
    assert_ne!(key("FROM scratch\nRUN make all\n", &setup), base);
    assert_ne!(key("FROM scratch\nRUN [\"make\"]\n", &setup), base);
    assert_ne!(
        key(
            "FROM scratch\nRUN --mount=type=cache,target=/c make\n",
            &setup
        ),
        base
    );
    assert_ne!(
        key(
            "FROM scratch\nRUN --mount=type=cache,target=/d make\n",
            &setup
        ),
        key(
            "FROM scratch\nRUN --mount=type=cache,target=/c make\n",
            &setup
        )
    );
    assert_ne!(key("FROM scratch\nRUN --network=none make\n", &setup), base);
    let hosts = Setup {
        extra_hosts: vec!["db:10.0.0.1".parse().unwrap()],
        ..Setup::default()
    };
    assert_ne!(key("FROM scratch\nRUN make\n", &hosts), base);
    let unconfined = Setup {
        security: Security {
            seccomp: crate::runtime::Seccomp::Unconfined,
            ..Security::default()
        },
        ..Setup::default()
    };
    assert_ne!(key("FROM scratch\nRUN make\n", &unconfined), base);
    // A secret's content never enters the key: the mount spec (its id) does.
    let plans = steps("FROM scratch\nRUN --mount=type=secret,id=token cat /run/secrets/token\n");
    let inputs = &plans[0].layer.as_ref().unwrap().inputs;
    assert_eq!(inputs["mounts"], "type=secret,id=token");
}

#[test]
fn the_base_image_and_so_the_platform_is_in_every_key() {
    // A platform's base is another manifest: its digest starts the chain.
    let on = |digest: &str| {
        let setup = Setup {
            base: Some(base_key(digest)),
            ..Setup::default()
        };
        keys(&plan_steps("FROM scratch\nENV A=1\nRUN x\n", &setup).unwrap())
    };
    let (amd64, arm64) = (on("sha256:amd64"), on("sha256:arm64"));
    assert_eq!(on("sha256:amd64"), amd64);
    for (a, b) in amd64.iter().zip(&arm64) {
        assert_ne!(a, b);
    }
}

#[test]
fn run_sees_build_args_env_and_the_default_path() {
    let setup = Setup {
        build_args: args(&[("V", "given"), ("HTTP_PROXY", "http://proxy")]),
        ..Setup::default()
    };
    let plans = plan_steps(
        "FROM scratch\nARG V\nENV E=1\nUSER app\nWORKDIR /w\nRUN echo\n",
        &setup,
    )
    .unwrap();
    let Some(LayerPlan {
        work: Work::Run(run),
        ..
    }) = &plans.last().unwrap().layer
    else {
        panic!("RUN plans a run");
    };
    assert_eq!(run.args, ["/bin/sh", "-c", "echo"]);
    assert_eq!(run.user.as_deref(), Some("app"));
    assert_eq!(run.workdir, std::path::Path::new("/w"));
    let env: Vec<&str> = run.env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(env, ["HTTP_PROXY", "PATH", "V", "E"]);
    assert_eq!(
        plans.last().unwrap().history.as_deref(),
        Some("RUN |1 V=given /bin/sh -c echo # buildkit")
    );
    // A proxy build arg is no input of the history.
    assert!(!plans
        .last()
        .unwrap()
        .history
        .as_ref()
        .unwrap()
        .contains("proxy"));
}

#[test]
fn entitlements_and_unsupported_forms_are_refused_when_planned() {
    let refused = plan_steps("FROM scratch\nRUN --network=host x\n", &Setup::default());
    assert!(matches!(refused, Err(StepError::Entitlement(_))));
    let allowed = Setup {
        entitlements: Entitlements {
            network_host: true,
            ..Entitlements::default()
        },
        ..Setup::default()
    };
    let plans = plan_steps("FROM scratch\nRUN --network=host x\n", &allowed).unwrap();
    assert_eq!(plans[0].layer.as_ref().unwrap().inputs["network"], "Host");
    let refused = plan_steps(
        "FROM scratch\nRUN --security=insecure x\n",
        &Setup::default(),
    );
    assert!(matches!(refused, Err(StepError::Entitlement(_))));
    let refused = plan_steps("FROM scratch\nRUN <<EOF cat\nx\nEOF\n", &Setup::default());
    assert!(matches!(refused, Err(StepError::Unsupported(_))));
}

#[test]
fn workdir_root_makes_no_layer() {
    let plans = steps("FROM scratch\nWORKDIR /\nWORKDIR /a/../b\n");
    assert!(plans[0].layer.is_none());
    assert_eq!(plans[0].history.as_deref(), Some("WORKDIR /"));
    let Some(LayerPlan {
        work: Work::Workdir { path, user },
        ..
    }) = &plans[1].layer
    else {
        panic!("WORKDIR plans a directory");
    };
    assert_eq!((path.as_str(), user.as_deref()), ("/a/../b", None));
}

#[test]
fn multi_stage_target_and_copy_from_planning() {
    let dockerfile = concat!(
        "FROM scratch AS build\nRUN make\n",
        "FROM scratch AS unused\nRUN nothing\n",
        "FROM scratch AS final\nCOPY --from=build /out /out\n",
        "FROM final AS test\nRUN check\n",
    );
    let plan = build_plan(dockerfile, &Setup::default());
    // The last stage by default; what it needs first, and nothing else.
    assert_eq!(plan.target, 3);
    assert_eq!(plan.build_order, [0, 2, 3]);
    assert_eq!(stage_index(&plan, "build"), Some(0));
    assert_eq!(stage_index(&plan, "FINAL"), Some(2));
    assert_eq!(stage_index(&plan, "1"), Some(1));
    assert_eq!(stage_index(&plan, "busybox:latest"), None);
    let setup = Setup {
        target: Some("final".into()),
        ..Setup::default()
    };
    let plan = build_plan(dockerfile, &setup);
    assert_eq!((plan.target, plan.build_order.as_slice()), (2, &[0, 2][..]));
    // COPY --from is keyed by the stage's recipe, not by a context checksum.
    let plans = plan_steps(dockerfile, &setup).unwrap();
    let layer = plans[0].layer.as_ref().unwrap();
    assert_eq!(
        layer.inputs["sources"],
        format!("stage {}", base_key("build"))
    );
    let Work::Copy(work) = &layer.work else {
        panic!("COPY plans a copy");
    };
    assert_eq!(work.from.as_deref(), Some("build"));
    assert_eq!(
        plans[0].history.as_deref(),
        Some("COPY /out /out # buildkit")
    );
}

#[test]
fn keys_follow_the_layers_a_step_runs_on_and_recipes_do_not() {
    let plan = |layers: &[crate::snapshot::LayerRef]| {
        let setup = Setup::default();
        let scratch = base_key("scratch");
        let env = StageEnv::new(
            scratch_config(),
            (scratch.clone(), scratch),
            layers,
            Vec::new(),
        );
        let build = build_plan("FROM scratch\nRUN x\n", &setup);
        let settings = PlanSettings {
            build_args: &setup.build_args,
            global_env: &build.global_env,
            proxy_env: &build.proxy_env,
            network: Network::default(),
            extra_hosts: &[],
            security: &setup.security,
            entitlements: &setup.entitlements,
        };
        let instructions = build.expand_stage(build.target, &env.vars).unwrap();
        step(&settings, &env, &instructions[0].command).unwrap()
    };
    let layer = |content: &str| crate::snapshot::LayerRef {
        descriptor: layerstore::Descriptor::new(
            "application/vnd.oci.image.layer.v1.tar",
            Digest::sha256_of(content.as_bytes()),
            1,
        ),
        diff_id: Digest::sha256_of(content.as_bytes()),
    };
    // The same step on another result of the step before it: another key, the same recipe.
    let (one, other) = (plan(&[layer("one")]), plan(&[layer("other")]));
    assert_ne!(one.env.key, other.env.key);
    assert_eq!(one.env.recipe, other.env.recipe);
    assert_eq!(plan(&[layer("one")]).env.key, one.env.key);
    // Metadata steps chain both.
    let plans = steps("FROM scratch\nENV A=1\n");
    assert_eq!(plans[0].env.key, plans[0].env.recipe);
    assert_ne!(plans[0].env.recipe, base_key("scratch"));
}
