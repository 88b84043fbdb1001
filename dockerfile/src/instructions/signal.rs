//! `STOPSIGNAL` values, checked as Docker's `signal.ParseSignal` checks them for BuildKit (v0.8): a non-zero
//! decimal number, or a Linux signal name with or without `SIG`, in any case (`SIGKILL`, `kill`, `SIGRTMIN+3`).

/// Linux signal names as Docker knows them (without `SIG`); the real-time ones are `RTMIN`, `RTMIN+1`…`RTMIN+15`,
/// `RTMAX-14`…`RTMAX-1` and `RTMAX`.
const NAMES: [&str; 34] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// Checks a STOPSIGNAL value (after expansion); the error is BuildKit's `Invalid signal: VALUE`.
pub fn check_stop_signal(value: &str) -> Result<(), String> {
    if is_valid(value) {
        Ok(())
    } else {
        Err(format!("Invalid signal: {value}"))
    }
}

fn is_valid(value: &str) -> bool {
    // Go's strconv.Atoi: an optional sign, then decimal digits that fit an int.
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<i64>().is_ok_and(|n| n != 0);
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.contains(&name) || is_realtime(name)
}

fn is_realtime(name: &str) -> bool {
    let offset = |rest: &str, max: u8| {
        !rest.starts_with('0')
            && rest.bytes().all(|b| b.is_ascii_digit())
            && rest.parse::<u8>().is_ok_and(|n| (1..=max).contains(&n))
    };
    match (name.strip_prefix("RTMIN"), name.strip_prefix("RTMAX")) {
        (Some(rest), _) => rest.is_empty() || rest.strip_prefix('+').is_some_and(|n| offset(n, 15)),
        (_, Some(rest)) => rest.is_empty() || rest.strip_prefix('-').is_some_and(|n| offset(n, 14)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_as_docker_parses_them() {
        for good in [
            "SIGTERM",
            "term",
            "SigKill",
            "9",
            "99",
            "-1",
            "+9",
            "SIGRTMIN",
            "SIGRTMIN+3",
            "RTMIN+15",
            "RTMAX-14",
            "SIGRTMAX",
            "CLD",
            "99999999999",
        ] {
            assert!(check_stop_signal(good).is_ok(), "{good}");
        }
        for bad in [
            "SIGFOO",
            "0",
            "",
            "0x9",
            "SIGSIGKILL",
            "SIGRTMIN+16",
            "RTMAX-15",
            "RTMIN+0",
            "RTMIN+03",
            "SIGUNUSED",
            "SIGKILL ",
            "[SIGKILL]",
            "SIGTERM SIGKILL",
            "RTMIN-1",
            "RTMIN++3",
            "99999999999999999999",
        ] {
            assert_eq!(
                check_stop_signal(bad).unwrap_err(),
                format!("Invalid signal: {bad}"),
                "{bad:?}"
            );
        }
    }
}
