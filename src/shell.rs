//! Shell words for the scripts asgd-sim prints (sbatch scripts): what a user pastes or
//! submits must mean what it meant here, whatever spaces or quotes a path or value holds.

/// `s` as one POSIX shell word: as it is where nothing in it is special, else single-quoted.
pub fn word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:=,+@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::word;

    #[test]
    fn plain_words_stay_and_others_are_single_quoted() {
        assert_eq!(word("/scratch/u/q"), "/scratch/u/q");
        assert_eq!(word("seed=1,2"), "seed=1,2");
        assert_eq!(word(""), "''");
        assert_eq!(word("a b"), "'a b'");
        assert_eq!(word("it's"), r"'it'\''s'");
        assert_eq!(word("$HOME"), "'$HOME'");
    }
}
