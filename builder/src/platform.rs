//! Platforms in a build, as BuildKit handles them: the front end keeps a `FROM --platform` value as text, and the
//! builder parses and normalizes it (and the target and build platforms) with layerstore's [`Platform`], the one
//! parser every command uses, so `linux/arm64/v8` and `linux/arm64` are the same platform everywhere.

use lade_dockerfile::{BuildOptions, BuildPlan, SourceDiagnostic, Stages};
use layerstore::Platform;

/// The platform this host builds for and on, normalized (`linux/arm64`, not `linux/arm64/v8`), as BuildKit's
/// default platform is.
pub fn host() -> Platform {
    Platform::host().normalized()
}

/// The platform ARGs BuildKit predefines from the target and build platforms: `TARGETPLATFORM`, `TARGETOS`,
/// `TARGETARCH`, `TARGETVARIANT`, then the same with `BUILD`.
pub fn predefined_args(target: &Platform, build: &Platform) -> Vec<(String, String)> {
    [("TARGET", target), ("BUILD", build)]
        .into_iter()
        .flat_map(|(prefix, platform)| {
            [
                (format!("{prefix}PLATFORM"), platform.to_string()),
                (format!("{prefix}OS"), platform.os.clone()),
                (format!("{prefix}ARCH"), platform.architecture.clone()),
                (
                    format!("{prefix}VARIANT"),
                    platform.variant.clone().unwrap_or_default(),
                ),
            ]
        })
        .collect()
}

/// Plans `stages` for a build with `options`, then parses every stage's `FROM --platform`: a malformed one is
/// an error at its FROM instruction (file, line and column).
pub fn plan(stages: &Stages, options: &BuildOptions) -> Result<BuildPlan, SourceDiagnostic> {
    let plan = stages.plan(options)?;
    stage_platforms(&plan)?;
    Ok(plan)
}

/// The parsed `--platform` of every planned stage (`None` where a FROM has none).
pub fn stage_platforms(plan: &BuildPlan) -> Result<Vec<Option<Platform>>, SourceDiagnostic> {
    plan.stages
        .iter()
        .map(|planned| {
            planned
                .platform
                .as_deref()
                .map(|text| {
                    Platform::parse(text).map_err(|error| {
                        plan.source().error(
                            error.to_string(),
                            planned.stage.from_location.span.clone(),
                            "expected os/arch[/variant]",
                        )
                    })
                })
                .transpose()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lade_dockerfile::Dockerfile;

    fn plan_of(source: &str) -> Result<BuildPlan, SourceDiagnostic> {
        let dockerfile = Dockerfile::parse(source, "Dockerfile").unwrap();
        let options = BuildOptions {
            platform_args: predefined_args(&host(), &host()),
            ..BuildOptions::default()
        };
        plan(&dockerfile.stages()?, &options)
    }

    #[test]
    fn arm64_with_its_variant_is_arm64() {
        let plan = plan_of("FROM --platform=linux/arm64/v8 alpine\nRUN true\n").unwrap();
        let platforms = stage_platforms(&plan).unwrap();
        assert_eq!(platforms, [Some(Platform::parse("linux/arm64").unwrap())]);
        assert_eq!(platforms[0].as_ref().unwrap().to_string(), "linux/arm64");
    }

    #[test]
    fn platform_args_expand_in_from() {
        let plan =
            plan_of("FROM --platform=$BUILDPLATFORM alpine\nFROM --platform= alpine\n").unwrap();
        assert_eq!(stage_platforms(&plan).unwrap(), [Some(host()), None]);
        let args = predefined_args(
            &Platform::parse("linux/arm/v7").unwrap(),
            &Platform::parse("linux/amd64").unwrap(),
        );
        assert_eq!(args[0], ("TARGETPLATFORM".into(), "linux/arm/v7".into()));
        assert_eq!(args[3], ("TARGETVARIANT".into(), "v7".into()));
        assert_eq!(args[7], ("BUILDVARIANT".into(), String::new()));
    }

    #[test]
    fn a_malformed_platform_names_file_line_and_column() {
        let error = plan_of("FROM alpine\n\n  FROM --platform=linux alpine\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Dockerfile:3:3: invalid platform \"linux\": expected os/arch[/variant]"
        );
        assert_eq!(error.label, "expected os/arch[/variant]");
    }
}
