//! Text cut into bounded pieces at character boundaries: how output larger than a frame travels
//! (several `Output` frames) and is journaled (several records), with one rule for both.

/// `text` in pieces of at most `max_bytes` (at least one character each), cut at character
/// boundaries; an empty text is one empty piece.
pub fn pieces(text: &str, max_bytes: usize) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(text.len() / max_bytes.max(1) + 1);
    let mut rest = text;
    while rest.len() > max_bytes {
        let mut cut = max_bytes;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            // A limit below one character's width: take the whole character.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_cut_at_character_boundaries_and_lose_nothing() {
        let text = "aé€😀".repeat(50);
        for max in [1, 2, 3, 4, 5, 7, 64, 10_000] {
            let cut = pieces(&text, max);
            assert_eq!(cut.concat(), text, "max {max}");
            let widest = text.chars().map(char::len_utf8).max().unwrap();
            assert!(cut.iter().all(|p| p.len() <= max.max(widest)), "max {max}");
            assert!(cut.iter().all(|p| !p.is_empty()), "max {max}");
        }
    }

    #[test]
    fn an_empty_output_is_one_empty_piece() {
        assert_eq!(pieces("", 4), [""]);
    }
}
