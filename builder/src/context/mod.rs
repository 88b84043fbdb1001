//! The build context: a directory read in place, minus what `.dockerignore` (or `<Dockerfile>.dockerignore`)
//! excludes, from which COPY and ADD select their sources, with a content checksum of a selection for cache keys.
//!
//! The same type serves `COPY --from`, over another stage's root filesystem with nothing ignored.

mod from_stream;
pub(crate) mod hashcache;

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use layerstore::Digest;
use sha2::{Digest as _, Sha256};

use crate::dockerignore::{self, MatchInfo, PatternError, PatternMatcher};
use crate::glob;
pub use from_stream::{unpack_context_stream, StreamedContext};
pub use hashcache::HashCache;

/// Why the context could not be read or a source not found.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// Reading the context (or a stage's root filesystem) failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// The `.dockerignore` (or `<Dockerfile>.dockerignore`) has a pattern that does not compile.
    #[error("invalid pattern in {file}: {source}")]
    Ignore {
        /// The ignore file.
        file: PathBuf,
        /// What is wrong with the pattern.
        source: PatternError,
    },
    /// A COPY or ADD source is not a valid pattern.
    #[error("invalid source pattern: {0}")]
    Glob(#[from] glob::BadPattern),
    /// A source matches nothing (worded as BuildKit words it).
    #[error("failed to compute cache key: {path:?} not found in {place}")]
    NotFound {
        /// The source as written.
        path: String,
        /// Where it was looked for, for the message: the build context, or the source stage or image.
        place: &'static str,
    },
    /// A context archive could not be unpacked.
    #[error("unpacking the build context: {0}")]
    Unpack(#[from] layerstore::layer::apply::ApplyError),
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> ContextError {
    move |source| ContextError::Io { context, source }
}

/// A directory that COPY/ADD read from.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    ignore: PatternMatcher,
    keeps_owners: bool,
    /// What the root is, for errors.
    place: &'static str,
}

/// A selected source: a path matched by a COPY/ADD source argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Slash-separated, relative to the context root (`.` for the root itself).
    pub relative: String,
    /// Where its content is: a top-level symlink is followed (inside the context).
    pub path: PathBuf,
    /// Whether it is a directory (after following a top-level symlink).
    pub(crate) is_dir: bool,
}

/// One file, directory or link of a source, as COPY copies it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Relative to the source (empty for the source itself).
    pub relative: PathBuf,
    /// Where it is on the host.
    pub(crate) path: PathBuf,
    /// Its metadata: a link's own for what is under a directory source, what it points at for the source itself.
    pub(crate) meta: Metadata,
}

impl BuildContext {
    /// Opens a context directory. Ignore rules come from `<dockerfile>.dockerignore` beside the Dockerfile when it
    /// exists, else from `.dockerignore` at the root. `dockerfile` may be relative to the root or absolute.
    pub fn open(root: &Path, dockerfile: &Path) -> Result<BuildContext, ContextError> {
        let root = fs::canonicalize(root).map_err(io_err(format!(
            "opening the build context {}",
            root.display()
        )))?;
        let dockerfile = root.join(dockerfile);
        let mut specific = dockerfile.clone().into_os_string();
        specific.push(".dockerignore");
        let candidates = [PathBuf::from(specific), root.join(".dockerignore")];
        let mut ignore = PatternMatcher::default();
        for file in candidates {
            match fs::read(&file) {
                Ok(bytes) => {
                    let patterns =
                        dockerignore::parse_ignore_file(&String::from_utf8_lossy(&bytes));
                    ignore =
                        PatternMatcher::new(&patterns).map_err(|source| ContextError::Ignore {
                            file: file.clone(),
                            source,
                        })?;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(format!("reading {}", file.display()))(e)),
            }
        }
        Ok(BuildContext {
            root,
            ignore,
            keeps_owners: false,
            place: "the build context or excluded by .dockerignore",
        })
    }

    /// A directory with nothing ignored whose files keep their owners when copied without `--chown` (another
    /// stage's or an image's root filesystem, for `COPY --from`).
    pub fn unfiltered(root: &Path) -> BuildContext {
        BuildContext {
            root: root.to_path_buf(),
            ignore: PatternMatcher::default(),
            keeps_owners: true,
            place: "the source stage or image",
        }
    }

    fn not_found(&self, path: &str) -> ContextError {
        ContextError::NotFound {
            path: path.to_string(),
            place: self.place,
        }
    }

    /// Whether copies keep the owner of these files when no `--chown` is given (BuildKit: stages and images do,
    /// the build context does not: its files become root's).
    pub fn keeps_owners(&self) -> bool {
        self.keeps_owners
    }

    /// The directory the context reads (canonicalized by [`BuildContext::open`]).
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Reads a file of the context whatever `.dockerignore` says (the Dockerfile and the ignore files themselves
    /// are always readable by the front end); symlinks are followed inside the context only.
    pub fn read_unfiltered(&self, relative: &str) -> Result<Vec<u8>, ContextError> {
        let cleaned = dockerignore::clean(relative.trim_start_matches('/'));
        let path = crate::tree::resolve_existing(&self.root, Path::new(&cleaned))
            .ok_or_else(|| self.not_found(relative))?;
        fs::read(&path).map_err(io_err(format!("reading {}", path.display())))
    }

    /// Whether `.dockerignore` excludes a path (slash-separated, relative to the root).
    pub fn is_excluded(&self, relative: &str) -> bool {
        let cleaned = dockerignore::clean(relative.trim_start_matches('/'));
        cleaned != "." && self.ignore.matches_or_parent_matches(&cleaned)
    }

    /// Resolves COPY/ADD source arguments (paths or Go `filepath.Match` globs, relative to the root) to sources,
    /// in argument order, glob matches sorted. A missing or excluded path is an error; a glob that matches nothing
    /// selects nothing, as in BuildKit (the step then makes an empty layer).
    pub fn select(&self, sources: &[String]) -> Result<Vec<Source>, ContextError> {
        let mut selected = Vec::new();
        for arg in sources {
            let cleaned = dockerignore::clean(arg.trim_start_matches('/'));
            let cleaned = cleaned.trim_start_matches("./").to_string();
            if glob::has_meta(&cleaned) {
                for relative in self.glob(&cleaned)? {
                    selected.push(self.source(&relative, arg)?);
                }
            } else {
                selected.push(self.source(&cleaned, arg)?);
            }
        }
        Ok(selected)
    }

    fn source(&self, relative: &str, arg: &str) -> Result<Source, ContextError> {
        if self.is_excluded(relative) {
            return Err(self.not_found(arg));
        }
        let rel_path = if relative == "." {
            Path::new("")
        } else {
            Path::new(relative)
        };
        // A symlink source is followed (every hop inside the root) to what it points at.
        let path = crate::tree::resolve_existing(&self.root, rel_path)
            .ok_or_else(|| self.not_found(arg))?;
        let meta =
            fs::symlink_metadata(&path).map_err(io_err(format!("reading {}", path.display())))?;
        Ok(Source {
            relative: relative.to_string(),
            path,
            is_dir: meta.is_dir(),
        })
    }

    /// Matches a glob component by component (a `*` never crosses a `/`), skipping excluded paths.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, ContextError> {
        let mut current = vec![String::new()];
        for component in pattern.split('/') {
            let mut next = Vec::new();
            for dir in &current {
                // A linked directory is listed where it leads inside the root, never outside.
                let Some(full) = crate::tree::resolve_existing(&self.root, Path::new(dir)) else {
                    continue;
                };
                let Ok(entries) = fs::read_dir(&full) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for name in names {
                    if glob::matches(component, &name)? {
                        let relative = if dir.is_empty() {
                            name
                        } else {
                            format!("{dir}/{name}")
                        };
                        if !self.is_excluded(&relative) {
                            next.push(relative);
                        }
                    }
                }
            }
            current = next;
        }
        Ok(current)
    }

    /// The entries of a source that COPY copies: the source itself and, for a directory, everything under it that
    /// neither `.dockerignore` nor `excludes` (matched against context-relative paths) excludes. A directory left
    /// out whose descendants an exception brings back is still listed, before them. Sorted, parents first.
    pub fn entries(
        &self,
        source: &Source,
        excludes: &PatternMatcher,
    ) -> Result<Vec<Entry>, ContextError> {
        let meta = fs::metadata(&source.path)
            .map_err(io_err(format!("reading {}", source.path.display())))?;
        let mut out = vec![Entry {
            relative: PathBuf::new(),
            path: source.path.clone(),
            meta,
        }];
        if source.is_dir {
            let prefix = if source.relative == "." {
                String::new()
            } else {
                format!("{}/", source.relative)
            };
            self.walk(
                &source.path,
                Path::new(""),
                &prefix,
                excludes,
                (MatchInfo::default(), MatchInfo::default()),
                &mut out,
            )?;
        }
        Ok(out)
    }

    fn walk(
        &self,
        dir: &Path,
        relative: &Path,
        prefix: &str,
        excludes: &PatternMatcher,
        parent: (MatchInfo, MatchInfo),
        out: &mut Vec<Entry>,
    ) -> Result<bool, ContextError> {
        let full = dir.join(relative);
        let mut names: Vec<_> = fs::read_dir(&full)
            .map_err(io_err(format!("listing {}", full.display())))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(format!("listing {}", full.display())))?;
        names.sort();
        let mut any = false;
        for name in names {
            let child = relative.join(&name);
            let context_path = format!("{prefix}{}", child.display());
            let (ignored, ignore_info) = self
                .ignore
                .matches_using_parent_results(&context_path, &parent.0);
            let (excluded, exclude_info) =
                excludes.matches_using_parent_results(&context_path, &parent.1);
            let path = dir.join(&child);
            let meta = fs::symlink_metadata(&path)
                .map_err(io_err(format!("reading {}", path.display())))?;
            let left_out = ignored || excluded;
            let descend_anyway = self.ignore.exclusions() || excludes.exclusions();
            if left_out && !(meta.is_dir() && descend_anyway) {
                continue;
            }
            let position = out.len();
            let is_dir = meta.is_dir();
            out.push(Entry {
                relative: child.clone(),
                path,
                meta,
            });
            let kept_children = is_dir
                && self.walk(
                    dir,
                    &child,
                    prefix,
                    excludes,
                    (ignore_info, exclude_info),
                    out,
                )?;
            if left_out && !kept_children {
                out.truncate(position);
                continue;
            }
            any = true;
        }
        Ok(any)
    }

    /// A content checksum of sources as COPY would copy them: names, types, content, link targets, and the mode and
    /// owner they get (`chmod` replaces permission bits; the owner is `chown`, else as [`Self::keeps_owners`]
    /// says). Times never count. `read` hears the bytes of each file that had to be read (not known to `cache`).
    pub fn checksum(
        &self,
        sources: &[Source],
        excludes: &PatternMatcher,
        chown: Option<(u32, u32)>,
        chmod: Option<u32>,
        cache: &mut HashCache,
        read: &mut dyn FnMut(u64),
    ) -> Result<Digest, ContextError> {
        let mut hasher = Sha256::new();
        for source in sources {
            hasher.update(format!("source {}\n", source.relative));
            for entry in self.entries(source, excludes)? {
                let kind = entry.meta.file_type();
                let perms = chmod.unwrap_or(entry.meta.mode() & 0o7777);
                let (uid, gid) = match chown {
                    Some(ids) => ids,
                    None if self.keeps_owners => (entry.meta.uid(), entry.meta.gid()),
                    None => (0, 0),
                };
                let content = if kind.is_file() {
                    let before = cache.bytes_read();
                    let digest = cache.file_digest(&entry.path, &entry.meta)?;
                    read(cache.bytes_read() - before);
                    digest.to_string()
                } else if kind.is_symlink() {
                    fs::read_link(&entry.path)
                        .map_err(io_err(format!("reading {}", entry.path.display())))?
                        .display()
                        .to_string()
                } else {
                    String::new()
                };
                let type_char = if kind.is_dir() {
                    'd'
                } else if kind.is_symlink() {
                    'l'
                } else if kind.is_file() {
                    'f'
                } else {
                    'o'
                };
                hasher.update(format!(
                    "{}\0{type_char}\0{perms:o}\0{uid}:{gid}\0{content}\n",
                    entry.relative.display()
                ));
            }
        }
        Ok(Digest::from_bytes(
            layerstore::Algorithm::Sha256,
            &hasher.finalize(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/sub")).unwrap();
        fs::create_dir_all(root.join("node_modules/x")).unwrap();
        fs::write(root.join("src/a.go"), "a").unwrap();
        fs::write(root.join("src/b.go"), "b").unwrap();
        fs::write(root.join("src/sub/c.go"), "c").unwrap();
        fs::write(root.join("src/notes.md"), "n").unwrap();
        fs::write(root.join("node_modules/x/index.js"), "x").unwrap();
        fs::write(root.join("README.md"), "r").unwrap();
        fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::os::unix::fs::symlink("src", root.join("link")).unwrap();
        dir
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.relative.display().to_string())
            .collect()
    }

    #[test]
    fn dockerignore_applies_and_the_dockerfile_specific_one_wins() {
        let dir = context();
        fs::write(
            dir.path().join(".dockerignore"),
            "node_modules\n*.md\n!README.md\nDockerfile\n",
        )
        .unwrap();
        let ctx = BuildContext::open(dir.path(), Path::new("Dockerfile")).unwrap();
        assert!(ctx.is_excluded("node_modules/x/index.js"));
        assert!(!ctx.is_excluded("README.md"));
        assert!(ctx.is_excluded("Dockerfile"));
        assert_eq!(
            ctx.read_unfiltered("Dockerfile").unwrap(),
            b"FROM scratch\n"
        );
        assert!(ctx
            .read_unfiltered(".dockerignore")
            .unwrap()
            .starts_with(b"node_modules"));
        assert!(matches!(
            ctx.select(&["Dockerfile".into()]),
            Err(ContextError::NotFound { .. })
        ));
        assert!(
            !ctx.is_excluded("src/notes.md"),
            "*.md only matches at the root"
        );
        assert!(matches!(
            ctx.select(&["node_modules".into()]),
            Err(ContextError::NotFound { .. })
        ));
        fs::write(dir.path().join("Dockerfile.dockerignore"), "src/sub\n").unwrap();
        let ctx = BuildContext::open(dir.path(), Path::new("Dockerfile")).unwrap();
        assert!(!ctx.is_excluded("node_modules"));
        assert!(ctx.is_excluded("src/sub/c.go"));
    }

    #[test]
    fn globs_select_sorted_matches_and_missing_sources_fail() {
        let dir = context();
        let ctx = BuildContext::open(dir.path(), Path::new("Dockerfile")).unwrap();
        let selected = ctx
            .select(&["/src/*.go".into(), "./README.md".into()])
            .unwrap();
        let rel: Vec<&str> = selected.iter().map(|s| s.relative.as_str()).collect();
        assert_eq!(rel, ["src/a.go", "src/b.go", "README.md"]);
        assert!(ctx.select(&["*.txt".into()]).unwrap().is_empty());
        assert!(matches!(
            ctx.select(&["missing".into()]),
            Err(ContextError::NotFound { .. })
        ));
        let link = &ctx.select(&["link".into()]).unwrap()[0];
        assert!(link.is_dir && link.path.ends_with("src"));
        // Links are followed inside the context only: this chain ends at <context>/etc/passwd, which is missing.
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("hop2")).unwrap();
        std::os::unix::fs::symlink("hop2", dir.path().join("hop1")).unwrap();
        assert!(matches!(
            ctx.select(&["hop1".into()]),
            Err(ContextError::NotFound { .. })
        ));
    }

    #[test]
    fn entries_honour_ignore_exceptions_and_excludes() {
        let dir = context();
        fs::write(dir.path().join(".dockerignore"), "src\n!src/sub/c.go\n").unwrap();
        let ctx = BuildContext::open(dir.path(), Path::new("Dockerfile")).unwrap();
        let root = ctx.select(&[".".into()]).unwrap();
        let all = names(&ctx.entries(&root[0], &PatternMatcher::default()).unwrap());
        assert!(all.contains(&"src/sub/c.go".to_string()), "{all:?}");
        assert!(
            all.contains(&"src/sub".to_string()) && all.contains(&"src".to_string()),
            "{all:?}"
        );
        assert!(!all.contains(&"src/a.go".to_string()), "{all:?}");
        let excludes = PatternMatcher::new(&["node_modules", "**/*.md"]).unwrap();
        let some = names(&ctx.entries(&root[0], &excludes).unwrap());
        assert!(
            !some
                .iter()
                .any(|n| n.starts_with("node_modules") || n.ends_with(".md")),
            "{some:?}"
        );
    }

    #[test]
    fn checksum_covers_content_names_modes_and_owner_but_not_times() {
        let dir = context();
        let store = layerstore::Store::open(dir.path().join(".store")).unwrap();
        let ctx = BuildContext::open(dir.path(), Path::new("Dockerfile")).unwrap();
        let mut cache = HashCache::open(&store);
        let none = PatternMatcher::default();
        let sum = |cache: &mut HashCache, chown, chmod| {
            let sources = ctx.select(&["src".into()]).unwrap();
            ctx.checksum(&sources, &none, chown, chmod, cache, &mut |_| {})
                .unwrap()
        };
        let base = sum(&mut cache, None, None);
        crate::tree::set_times(&dir.path().join("src/a.go"), 5, 0, 5, 0).unwrap();
        assert_eq!(sum(&mut cache, None, None), base, "mtime must not count");
        assert_ne!(sum(&mut cache, Some((1, 1)), None), base);
        assert_ne!(sum(&mut cache, None, Some(0o600)), base);
        fs::set_permissions(
            dir.path().join("src/b.go"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let moded = sum(&mut cache, None, None);
        assert_ne!(moded, base);
        fs::write(dir.path().join("src/b.go"), "B").unwrap();
        assert_ne!(sum(&mut cache, None, None), moded);
        fs::rename(
            dir.path().join("src/sub/c.go"),
            dir.path().join("src/sub/d.go"),
        )
        .unwrap();
        let renamed = sum(&mut cache, None, None);
        let before = cache.files_read();
        assert_eq!(sum(&mut cache, None, None), renamed);
        assert_eq!(
            cache.files_read(),
            before,
            "unchanged files are not read again"
        );
    }
}
