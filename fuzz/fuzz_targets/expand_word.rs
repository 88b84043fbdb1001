//! Fuzzes word expansion; the first byte picks the escape character and the raw options.
#![no_main]

use lade_dockerfile::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, word)) = data.split_first() else {
        return;
    };
    let word = String::from_utf8_lossy(word);
    let lexer = Lexer {
        raw_quotes: options & 1 != 0,
        raw_escapes: options & 2 != 0,
        skip_unset_env: options & 4 != 0,
        ..Lexer::new(if options & 8 != 0 { '`' } else { '\\' })
    };
    let env = vec![
        ("A".to_string(), "a/b*c.d".to_string()),
        ("EMPTY".to_string(), String::new()),
    ];
    let _ = lexer.process_word(&word, &env);
    let _ = lexer.process_words(&word, &env);
});
