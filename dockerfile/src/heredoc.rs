//! Finding heredoc markers (`<<EOF`, `<<-EOF`, `3<<"EOF"`) in an instruction line, as BuildKit does.
//!
//! The line is split into words with quotes and escapes kept and unset variables left alone; every word of the
//! form `[fd]<<[-]word` starts a heredoc. The delimiter is the word with quotes removed; a quoted delimiter
//! turns off expansion of the content.

use super::ast::Heredoc;
use super::shell::Lexer;

const NO_VARIABLES: &[(String, String)] = &[];

/// Parses one word as a heredoc marker: `^(\d*)<<(-?)([^<]*)$` whose delimiter is a single shell word.
pub fn parse_heredoc_marker(word: &str) -> Option<Heredoc> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let after_fd = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match after_fd.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after_fd),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    // An unparsable file descriptor counts as 0, like Go's ignored strconv error.
    let file_descriptor = word[..digits].parse().unwrap_or(0);
    let cooked = Lexer {
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    let words = cooked.process_words(rest, NO_VARIABLES).ok()?;
    let [name] = words.as_slice() else {
        return None;
    };
    let raw = Lexer {
        raw_quotes: true,
        ..cooked
    };
    let raw_words = raw.process_words(rest, NO_VARIABLES).ok()?;
    let quote_count = |text: &str| text.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw_words.len() == 1 && quote_count(name) == quote_count(&raw_words[0]);
    Some(Heredoc {
        name: name.clone(),
        file_descriptor,
        expand,
        chomp,
        content: String::new(),
    })
}

/// All heredoc markers in an instruction line, in order.
pub fn heredocs_in_line(line: &str) -> Vec<Heredoc> {
    // Splitting never creates `<<`: a line without it has no marker.
    if !line.contains("<<") {
        return Vec::new();
    }
    let lexer = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    let words = lexer.process_words(line, NO_VARIABLES).unwrap_or_default();
    words
        .iter()
        .filter_map(|word| parse_heredoc_marker(word))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        let found = heredocs_in_line(r#"RUN 3<<-EOF cat <<"A"B <<'C' x<<D "<<E""#);
        let summary: Vec<_> = found
            .iter()
            .map(|h| (h.name.as_str(), h.file_descriptor, h.chomp, h.expand))
            .collect();
        assert_eq!(
            summary,
            [
                ("EOF", 3, true, true),
                ("AB", 0, false, false),
                ("C", 0, false, false)
            ]
        );
    }

    #[test]
    fn not_markers() {
        assert!(heredocs_in_line("RUN <<").is_empty());
        assert!(heredocs_in_line("RUN <<<EOF").is_empty());
        assert!(heredocs_in_line("RUN <<EOF \"unterminated").is_empty());
        assert_eq!(heredocs_in_line("RUN <<$X")[0].name, "$X");
    }

    #[test]
    fn chomped_content() {
        let mut heredoc = parse_heredoc_marker("<<-EOF").unwrap();
        heredoc.content = "\t\ta\n\tb\n".into();
        assert_eq!(heredoc.effective_content(), "a\nb\n");
    }
}
