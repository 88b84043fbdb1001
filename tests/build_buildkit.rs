//! Differential tests against BuildKit: for the same Dockerfile, context and base image, lade's image has the same
//! config (history included, timestamps and layer digests aside) and the same merged filesystem as the image Docker's
//! BuildKit builds.

mod common;

use std::path::Path;

use common::compare::{filesystem, normalized_config};
use common::{have, lade_with_busybox, require, workspace, BusyboxBase, Docker, Lade};

/// Every instruction that changes the config, plus COPY/ADD/RUN/WORKDIR layers.
const EVERY_INSTRUCTION: &str = r#"FROM busybox:local AS base
ARG V=1
ARG EMPTY
ENV A=1 B="two words"
LABEL l1=v1 "l 2"="v 2"
WORKDIR /app
WORKDIR sub
COPY f.txt ./
COPY --chown=1000:1000 d/ /dst/
COPY --chmod=0640 f.txt /modes/
ADD f.txt /added/
ADD archive.tar /unpacked/
RUN echo "$V $A" > /app/x && rm /bin/ar && rm -rf /home/app && mkdir /home/app
RUN ["sh", "-c", "echo exec > /app/y"]
RUN --mount=type=cache,target=/var/cache/app echo c > /var/cache/app/f
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x
RUN --mount=type=bind,source=f.txt,target=/mnt/bound/f cat /mnt/bound/f > /bound
RUN --mount=type=bind,source=d,target=/bdir true
RUN --mount=type=secret,id=nothing true
RUN --mount=type=ssh test ! -e "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /ssh
USER app
EXPOSE 80 53/udp 8000-8002
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD true
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo onbuild
MAINTAINER someone
ENTRYPOINT ["/bin/sh"]
CMD echo hi
"#;

const MULTI_STAGE_ARGS: &str = r#"ARG BASE=busybox:local
FROM ${BASE} AS one
ARG GREETING=hi
RUN mkdir /out && echo "$GREETING" > /out/greeting
FROM scratch
COPY --from=one /out /
COPY --from=one /bin/busybox /bin/
ENTRYPOINT ["/bin/busybox", "cat"]
CMD ["/greeting"]
"#;

/// ARG values as BuildKit keeps them: in one environment with ENV (the later wins, in RUN and in expansion), passed
/// on to a stage built FROM this one (where the base's ENV is applied over them again), one history entry for a
/// multi-name ARG line, and `|N` history prefixes only for the stage's own ARGs.
const ARG_SCOPES: &str = r#"FROM busybox:local AS first
ENV E=env
ARG E=arg
ARG A=1 B=2
ENV B=envb
RUN echo "$E $A $B" > /first
FROM first AS second
ARG A
ARG C=$A-c
LABEL a=$A b=$B e=$E c=$C
WORKDIR /w$A
RUN echo "$E $A $B $C" > /second
FROM second
ENV A=child
RUN echo "$E $A $B $C" > /third
"#;

/// `COPY --chown` forms: a name brings its primary group (here not equal to its uid), an id itself, and an empty
/// user or group half is 0.
const CHOWN_FORMS: &str = r#"FROM busybox:local
RUN echo 'odd:x:1500:1600::/:/bin/sh' >> /etc/passwd && echo 'oddg:x:1600:' >> /etc/group
COPY --chown=odd f.txt /c/name
COPY --chown=odd: f.txt /c/name-colon
COPY --chown=odd:app f.txt /c/name-group
COPY --chown=1001 f.txt /c/id
COPY --chown=1001: f.txt /c/id-colon
COPY --chown=:1002 f.txt /c/group-id
COPY --chown=:oddg f.txt /c/group-name
COPY --chown=: f.txt /c/colon
"#;

/// What a RUN step sees of its container: environment, identity, umask, hostname, `/etc/hosts`, capabilities (none
/// inheritable or ambient, so a non-root user has none), seccomp (Docker's profile: a filter, and `unshare -U`
/// refused) and no-new-privileges, as root and as a user; and its mounts (`/proc`, `/dev`, `/sys`, cgroups, masked and
/// read-only paths: mount point, options and type of each, in order).
const RUN_ENVIRONMENT: &str = r#"FROM busybox:local
ARG A=1
RUN env | sort > /env-root; id > /id-root; umask > /umask; hostname > /hostname; cat /etc/hosts > /hosts; grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status > /status-root
RUN awk '{ for (i = 7; $i != "-"; i++) {} print $5, $6, $(i + 1) }' /proc/self/mountinfo > /mounts
RUN unshare -U true 2> /unshare-error; echo $? > /unshare-status
USER app
RUN env | sort > /tmp/env-app; id > /tmp/id-app; grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status > /tmp/status-app
"#;

/// Steps that change nothing still make a layer, an empty one, as in BuildKit: a glob matching nothing (which is
/// no error), RUN and WORKDIR of an existing directory; only `WORKDIR /` makes none.
const EMPTY_STEPS: &str = r#"FROM busybox:local AS stage
FROM busybox:local
WORKDIR /tmp
WORKDIR /
ADD nomatch* /nothing/
COPY --from=stage /nomatch* /nothing-either/
RUN true
WORKDIR /new
WORKDIR /new
"#;

/// Copies onto symlinks: a file copied to a link's path writes where the link points (a dangling link's target is
/// created) and the link stays; a link to a directory takes the file inside; inside a copied directory, a link in the
/// way is replaced.
const COPY_ONTO_LINKS: &str = r#"FROM busybox:local
RUN mkdir /realdir /dst && ln -s /realdir /dirlink && echo t > /target && ln -s /target /filelink && ln -s target /rellink && ln -s /nowhere /dangling && ln -s /target /dst/f.txt
COPY f.txt /dirlink
COPY f.txt /filelink
COPY f.txt /rellink
COPY f.txt /dangling
COPY f.txt /dst/
"#;

/// RUN mounts and what they leave: a cache's owner and mode, a cache seeded `from=` a stage, rw and read-only binds,
/// tmpfs, a bind from a stage; the directories made for mount points stay, as BuildKit (v0.8) leaves them.
const RUN_MOUNTS: &str = r#"FROM busybox:local AS seed
RUN mkdir -p /seed && echo seeded > /seed/s
FROM busybox:local
RUN --mount=type=cache,target=/c1,uid=1000,gid=1000,mode=0700 stat -c '%u:%g:%a' /c1 > /c1stat
RUN --mount=type=cache,target=/deep/c4,from=seed,source=/seed ls /deep/c4 > /c4list
RUN --mount=type=bind,target=/b,rw echo changed > /b/f.txt; cat /b/f.txt > /bw
RUN --mount=type=bind,source=d,target=/mnt/bd,readonly ls /mnt/bd > /bdlist
RUN --mount=type=tmpfs,target=/t touch /t/z && ls /t > /tlist
RUN --mount=type=bind,from=seed,source=/seed/s,target=/from/seed/s cat /from/seed/s > /fs
"#;

/// A FROM scratch stage whose RUN makes the runtime create /proc, /dev, /sys and /etc: they stay in the layer.
const SCRATCH_RUN: &str = r#"FROM busybox:local AS tools
FROM scratch
COPY --from=tools /bin/busybox /bin/busybox
RUN ["/bin/busybox", "true"]
"#;

/// Copy details BuildKit is particular about: `--chmod` on setuid files and created directories, hard links from a
/// stage, directories the copy creates, an archive with unclean entry names, and WORKDIR created as the current USER
/// (an absolute one kept as written).
const COPY_DETAILS: &str = r#"FROM busybox:local AS build
RUN mkdir -p /out/deep && echo built > /out/deep/file && ln /out/deep/file /out/hard && ln -s deep/file /out/sym
FROM busybox:local
COPY --chmod=700 d /chmodded
COPY --chmod=4755 f.txt /not-setuid
COPY private /private-copy
COPY --from=build /out /fromstage
ADD unclean.tar /unclean/
USER 1000
WORKDIR /workdir-as-user
WORKDIR /w/x/../y/./z
USER root
RUN pwd > /pwd
WORKDIR relative/path
COPY f.txt ./
"#;

/// Config and filesystem corners: same-line ENV expansion, legacy LABEL continuation, duplicate ports, an empty
/// ENTRYPOINT, HEALTHCHECK NONE, a numeric STOPSIGNAL, wildcard directory sources, and a RUN that replaces
/// directories of the base with a file and with a new directory.
const CONFIG_CORNERS: &str = r#"FROM busybox:local
ENV A=one
ENV A=two B=$A
LABEL "quoted key"="value with \"quotes\"" multi=a\
b
EXPOSE 80/tcp 80 443/udp
COPY d* /wild/
RUN rm -rf /home && echo file > /home && rm -rf /var && mkdir /var && touch /var/new
WORKDIR $A/sub
USER app:app
SHELL ["/bin/sh", "-ec"]
CMD echo hi
ENTRYPOINT []
HEALTHCHECK NONE
STOPSIGNAL 9
VOLUME ["/v1", "/v2"]
"#;

/// Several sources to a destination without a trailing slash, as BuildKit v0.8 copies them: each in turn onto the
/// destination, so the last file wins, and a directory first makes a directory the later files go into; a glob's
/// matches likewise; an existing directory takes them all.
const SEVERAL_SOURCES: &str = r#"FROM busybox:local AS stage
RUN echo 1 > /one && echo 2 > /two
FROM busybox:local
COPY a.txt b.txt /files
COPY *.txt /globbed
COPY d a.txt /dir-first
COPY a.txt b.txt /tmp
ADD a.txt b.txt /added
COPY --from=stage /one /two /from-stage
WORKDIR /w
COPY a.txt b.txt relative
"#;

/// Relative destinations that climb out of WORKDIR resolve against it (and never above the root).
const CLIMBING_DESTINATIONS: &str = r#"FROM busybox:local
WORKDIR /app/sub2
COPY f.txt ../up.txt
COPY f.txt ../../top.txt
COPY f.txt ../../../../above-root.txt
COPY d ../dcopy
ADD f.txt ./../added/
"#;

/// `--chown` names the image has no entry for: BuildKit v0.8 makes an unknown user root and leaves the user's gid
/// for an unknown group.
const CHOWN_UNKNOWN_NAMES: &str = r#"FROM busybox:local
COPY --chown=nosuch f.txt /c/user
COPY --chown=nosuch:app f.txt /c/user-group
COPY --chown=app:nosuchg f.txt /c/group
COPY --chown=1001:nosuchg f.txt /c/id-group
COPY --chown=nosuch:1234 f.txt /c/user-gid
COPY --chown=:nosuchg f.txt /c/colon-group
ADD --chown=nosuch d /c/dir
"#;

/// EXPOSE words split after expansion (a variable may hold several ports, or none), and Docker's port forms: a host
/// mapping dropped, an empty or upper-case protocol.
const EXPOSE_EXPANDED: &str = r#"FROM busybox:local
ENV PORTS="81 82/udp" NONE=
EXPOSE $PORTS 83
EXPOSE $NONE
EXPOSE 8080:80 127.0.0.1:9090:90/udp [::1]:1:91 92/ 93/TCP 1-2-3
"#;

/// Input BuildKit v0.8 takes although it looks wrong: a `--chmod` that is not octal is ignored, STOPSIGNAL names
/// in any case and real-time ones, empty HEALTHCHECK options, and `COPY --from` naming a stage in another case.
const ACCEPTED_ODDITIES: &str = r#"FROM busybox:local AS Upper
FROM busybox:local
COPY --chmod=999 f.txt /chmod-not-octal
COPY --chmod=u+x f.txt /chmod-symbolic
COPY --from=Upper /etc/group /from-upper
STOPSIGNAL sigrtmin+3
HEALTHCHECK --interval= --retries= CMD true
"#;

/// Forms BuildKit v0.8 takes that look incomplete: an empty `--platform=` or `--from=` (the default platform, the
/// context), a stage name used twice (the last one counts, for FROM among the stages before it), an ONBUILD trigger
/// that is no instruction (kept as text), and bare RUN, ENTRYPOINT and CMD (shell form of nothing).
const LENIENT_FORMS: &str = r#"FROM --platform= busybox:local AS a
RUN echo first > /which
FROM busybox:local AS a
RUN echo second > /which
FROM a AS from-the-second
RUN cp /which /which-from
FROM busybox:local
COPY --from= f.txt /from-empty
COPY --from=a /which /which
COPY --from=from-the-second /which-from /which-from
ONBUILD BOGUS x
RUN
ENTRYPOINT
CMD
"#;

fn write_context(dir: &Path, dockerfile: &str) {
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.join("f.txt"), "f\n").unwrap();
    std::fs::create_dir_all(dir.join("d/e")).unwrap();
    std::fs::write(dir.join("d/g"), "g\n").unwrap();
    std::fs::write(dir.join("d/e/h"), "h\n").unwrap();
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(3);
    header.set_mode(0o600);
    header.set_uid(12);
    archive
        .append_data(&mut header, "inner/t.txt", &b"t!\n"[..])
        .unwrap();
    std::fs::write(dir.join("archive.tar"), archive.into_inner().unwrap()).unwrap();
}

/// Builds `context` with BuildKit and with lade; returns lade's store with `lade:test` and `buildkit:test`.
fn build_both(docker: &Docker, base: &BusyboxBase, context: &Path, build_args: &[&str]) -> Lade {
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let number = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("lade-buildkit-{}-{number}", std::process::id());
    let mut command = docker.command();
    command
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "--network=none", "-q", "-t", &tag]);
    for arg in build_args {
        command.args(["--build-arg", arg]);
    }
    let out = command.arg(context).output().unwrap();
    assert!(
        out.status.success(),
        "BuildKit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = context.join("../buildkit.tar");
    docker.ok(&["save", "-o", saved.to_str().unwrap(), &tag]);
    docker.ok(&["rmi", &tag]);

    let lade = lade_with_busybox(base);
    let mut args = vec!["build", "-q", "-t", "lade:test"];
    for arg in build_args {
        args.extend(["--build-arg", arg]);
    }
    args.push(context.to_str().unwrap());
    lade.ok(&args);
    let loaded = lade.ok(&["load", "-i", saved.to_str().unwrap()]);
    lade.ok(&[
        "tag",
        loaded.trim().strip_prefix("Loaded image: ").unwrap(),
        "buildkit:test",
    ]);
    lade
}

/// The config with its layer digests replaced by their count (layer bytes differ in mtimes; their number must not).
fn without_layer_digests(mut config: serde_json::Value) -> serde_json::Value {
    let layers = config["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len);
    config["rootfs"] = serde_json::json!({ "layers": layers });
    // Go writes some unset fields as null; they mean the same as absent.
    if let Some(inner) = config["config"].as_object_mut() {
        inner.retain(|_, v| !v.is_null());
    }
    config
}

fn assert_same_image(lade: &Lade) {
    let ours = without_layer_digests(normalized_config(lade, "lade:test"));
    let theirs = without_layer_digests(normalized_config(lade, "buildkit:test"));
    assert_eq!(
        serde_json::to_string_pretty(&ours).unwrap(),
        serde_json::to_string_pretty(&theirs).unwrap(),
        "configs differ (left: lade, right: BuildKit)"
    );
    let ours = filesystem(lade, "lade:test");
    let theirs = filesystem(lade, "buildkit:test");
    let only_ours: Vec<&String> = ours.iter().filter(|l| !theirs.contains(l)).collect();
    let only_theirs: Vec<&String> = theirs.iter().filter(|l| !ours.contains(l)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "filesystems differ\nonly lade: {only_ours:#?}\nonly BuildKit: {only_theirs:#?}"
    );
}

fn setup() -> Option<(&'static Docker, BusyboxBase)> {
    require("runc", have("runc"))?;
    let docker = Docker::get()?;
    let base = BusyboxBase::make(Some(docker))?;
    docker.ok(&["load", "-i", base.docker_save().to_str().unwrap()]);
    Some((docker, base))
}

/// Builds `dockerfile` in the standard context (plus whatever `prepare` adds) with BuildKit and with lade, and
/// asserts the two images match.
fn assert_builds_like_buildkit(dockerfile: &str, build_args: &[&str], prepare: impl FnOnce(&Path)) {
    let Some((docker, base)) = setup() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let context = work.path().join("context");
    std::fs::create_dir(&context).unwrap();
    write_context(&context, dockerfile);
    prepare(&context);
    let lade = build_both(docker, &base, &context, build_args);
    assert_same_image(&lade);
}

#[test]
fn every_instruction_matches_buildkit() {
    assert_builds_like_buildkit(EVERY_INSTRUCTION, &["V=override"], |_| {});
}

#[test]
fn copy_details_match_buildkit() {
    assert_builds_like_buildkit(COPY_DETAILS, &[], |context| {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &str, mode| {
            std::fs::set_permissions(context.join(path), std::fs::Permissions::from_mode(mode))
                .unwrap()
        };
        mode("d/g", 0o4755);
        std::fs::create_dir(context.join("private")).unwrap();
        std::fs::write(context.join("private/p"), "p\n").unwrap();
        mode("private", 0o750);
        // Entry names Docker cleans rather than refuses: `rel/../up` is `up`, `/abs/file` is `abs/file`.
        let mut unclean = tar::Builder::new(Vec::new());
        for name in ["rel/../up", "/abs/file", "./dot/f"] {
            let mut header = tar::Header::new_ustar();
            header.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(2);
            header.set_mode(0o640);
            header.set_cksum();
            unclean.append(&header, &b"x\n"[..]).unwrap();
        }
        std::fs::write(context.join("unclean.tar"), unclean.into_inner().unwrap()).unwrap();
    });
}

#[test]
fn config_corners_match_buildkit() {
    assert_builds_like_buildkit(CONFIG_CORNERS, &[], |_| {});
}

#[test]
fn multi_stage_with_global_args_matches_buildkit() {
    assert_builds_like_buildkit(MULTI_STAGE_ARGS, &["GREETING=hello"], |_| {});
}

#[test]
fn arg_scopes_match_buildkit() {
    assert_builds_like_buildkit(ARG_SCOPES, &[], |_| {});
    assert_builds_like_buildkit(ARG_SCOPES, &["A=9", "E=cli"], |_| {});
}

#[test]
fn chown_forms_match_buildkit() {
    assert_builds_like_buildkit(CHOWN_FORMS, &[], |_| {});
}

#[test]
fn run_environment_matches_buildkit() {
    assert_builds_like_buildkit(RUN_ENVIRONMENT, &[], |_| {});
}

/// A RUN whose command calls a syscall Docker's seccomp profile forbids (`unshare(CLONE_NEWUSER)`, which needs no
/// capability, so only the filter stops it) fails in both, with the same exit code and message.
#[test]
fn forbidden_syscalls_fail_as_in_buildkit() {
    let Some((docker, base)) = setup() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    write_context(work.path(), "FROM busybox:local\nRUN unshare -U true\n");
    let out = docker
        .command()
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "--network=none", "--progress=plain"])
        .arg(work.path())
        .output()
        .unwrap();
    let buildkit = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{buildkit}");
    let message = "unshare: unshare(0x10000000): Operation not permitted";
    assert!(
        buildkit.contains(message) && buildkit.contains("exit code: 1"),
        "{buildkit}"
    );
    let lade = lade_with_busybox(&base);
    let ours = lade.fails(&["build", "--progress=plain", work.path().to_str().unwrap()]);
    assert!(
        ours.contains(message) && ours.contains("exited with code 1"),
        "{ours}"
    );
}

#[test]
fn empty_steps_match_buildkit() {
    assert_builds_like_buildkit(EMPTY_STEPS, &[], |_| {});
}

#[test]
fn copy_onto_links_matches_buildkit() {
    assert_builds_like_buildkit(COPY_ONTO_LINKS, &[], |_| {});
}

#[test]
fn run_mounts_match_buildkit() {
    assert_builds_like_buildkit(RUN_MOUNTS, &[], |_| {});
}

#[test]
fn scratch_run_matches_buildkit() {
    assert_builds_like_buildkit(SCRATCH_RUN, &[], |_| {});
}

#[test]
fn fixtures_match_buildkit() {
    let Some((docker, base)) = setup() else {
        return;
    };
    for fixture in ["hello", "multistage", "nodeapp"] {
        let work = tempfile::tempdir().unwrap();
        let context = work.path().join("context");
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(workspace().join("fixtures").join(fixture))
            .arg(&context)
            .status()
            .unwrap();
        assert!(status.success());
        let lade = build_both(docker, &base, &context, &[]);
        assert_same_image(&lade);
    }
}

#[test]
fn onbuild_triggers_match_buildkit() {
    let Some((docker, base)) = setup() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let parent = work.path().join("parent");
    std::fs::create_dir(&parent).unwrap();
    write_context(
        &parent,
        "FROM busybox:local\nONBUILD COPY f.txt /from-child/\nONBUILD RUN echo triggered > /triggered\n",
    );
    let child = work.path().join("child");
    std::fs::create_dir(&child).unwrap();
    write_context(
        &child,
        "FROM onbuild-parent:1\nRUN cat /triggered /from-child/f.txt\n",
    );

    let out = docker
        .command()
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "--network=none", "-q", "-t", "onbuild-parent:1"])
        .arg(&parent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = work.path().join("buildkit.tar");
    let out = docker
        .command()
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "--network=none", "-q", "-t", "onbuild-child:1"])
        .arg(&child)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    docker.ok(&["save", "-o", saved.to_str().unwrap(), "onbuild-child:1"]);
    docker.ok(&["rmi", "onbuild-child:1", "onbuild-parent:1"]);
    let lade = lade_with_busybox(&base);
    lade.ok(&[
        "build",
        "-q",
        "-t",
        "onbuild-parent:1",
        parent.to_str().unwrap(),
    ]);
    lade.ok(&["build", "-q", "-t", "lade:test", child.to_str().unwrap()]);
    let loaded = lade.ok(&["load", "-i", saved.to_str().unwrap()]);
    lade.ok(&[
        "tag",
        loaded.trim().strip_prefix("Loaded image: ").unwrap(),
        "buildkit:test",
    ]);
    assert_same_image(&lade);
}

/// Adds `a.txt` and `b.txt` to the standard context.
fn two_more_files(context: &Path) {
    std::fs::write(context.join("a.txt"), "a\n").unwrap();
    std::fs::write(context.join("b.txt"), "b\n").unwrap();
}

#[test]
fn several_sources_match_buildkit() {
    assert_builds_like_buildkit(SEVERAL_SOURCES, &[], two_more_files);
}

#[test]
fn climbing_destinations_match_buildkit() {
    assert_builds_like_buildkit(CLIMBING_DESTINATIONS, &[], |_| {});
}

#[test]
fn chown_unknown_names_match_buildkit() {
    assert_builds_like_buildkit(CHOWN_UNKNOWN_NAMES, &[], |_| {});
}

#[test]
fn expose_after_expansion_matches_buildkit() {
    assert_builds_like_buildkit(EXPOSE_EXPANDED, &[], |_| {});
}

#[test]
fn accepted_oddities_match_buildkit() {
    assert_builds_like_buildkit(ACCEPTED_ODDITIES, &[], |_| {});
}

#[test]
fn lenient_forms_match_buildkit() {
    assert_builds_like_buildkit(LENIENT_FORMS, &[], |_| {});
}

/// Dockerfiles BuildKit v0.8 refuses, each with a part of its message that lade's must contain too.
const REFUSED: &[(&str, &str)] = &[
    ("STOPSIGNAL SIGFOO", "Invalid signal: SIGFOO"),
    ("ARG S=SIGBAR\nSTOPSIGNAL $S", "Invalid signal: SIGBAR"),
    ("STOPSIGNAL 0", "Invalid signal: 0"),
    ("STOPSIGNAL SIGRTMIN+16", "Invalid signal: SIGRTMIN+16"),
    ("STOPSIGNAL [\"SIGKILL\"]", "Invalid signal: [SIGKILL]"),
    (
        "HEALTHCHECK --interval=0s CMD true",
        "Interval \"interval\" cannot be less than 1ms",
    ),
    (
        "HEALTHCHECK --timeout=500us CMD true",
        "Interval \"timeout\" cannot be less than 1ms",
    ),
    (
        "HEALTHCHECK --retries=0 CMD true",
        "--retries must be at least 1 (not 0)",
    ),
    (
        "ARG V\nVOLUME $V",
        "VOLUME specified can not be an empty string",
    ),
    ("EXPOSE +80", "Invalid containerPort: +80"),
    ("SHELL", "SHELL requires at least one argument"),
    ("ONBUILD", "ONBUILD requires at least one argument"),
    ("EXPOSE 1.2.3:80:80", "Invalid ip address: 1.2.3"),
    ("ARG P=80/xtp\nEXPOSE $P", "Invalid proto: xtp"),
    ("COPY f.txt d /dst", "to non-directory"),
    ("COPY f.txt /dst\nCOPY d /dst", "to non-directory"),
    // A stage is named in FROM by its lowercase name only; `Upper` is an (invalid) image reference.
    (
        "FROM busybox:local AS Upper\nFROM Upper",
        "must be lowercase",
    ),
    // A `--chown` name needs the image's /etc/passwd (or /etc/group) to look it up in.
    (
        "FROM scratch\nCOPY f.txt /f\nCOPY --chown=nosuch f.txt /x",
        "etc/passwd",
    ),
    (
        "FROM scratch\nCOPY f.txt /f\nCOPY --chown=1:nosuchg f.txt /x",
        "etc/group",
    ),
];

#[test]
fn refused_input_is_refused_like_buildkit() {
    let Some((docker, base)) = setup() else {
        return;
    };
    let lade = lade_with_busybox(&base);
    for (body, message) in REFUSED {
        let work = tempfile::tempdir().unwrap();
        let dockerfile = if body.starts_with("FROM ") {
            format!("{body}\n")
        } else {
            format!("FROM busybox:local\n{body}\n")
        };
        write_context(work.path(), &dockerfile);
        let out = docker
            .command()
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "--network=none", "-q"])
            .arg(work.path())
            .output()
            .unwrap();
        let theirs = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && theirs.contains(message),
            "BuildKit on {body:?}: expected a failure saying {message:?}, got {theirs}"
        );
        let ours = lade.fails(&["build", "-q", work.path().to_str().unwrap()]);
        assert!(
            ours.contains(message),
            "lade on {body:?}: expected {message:?} in {ours}"
        );
    }
}
