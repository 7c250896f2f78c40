//! Cache affinity: which free slot a process without a slot of its own takes. A server keeps a
//! slot's cache after its process leaves and, for the next request there, reads again only what
//! differs from it; reading a prompt is one long step that every sequence of the batch waits for.
//! So a new process goes to the free slot whose cache begins like its conversation (processes of
//! one task often share a system prompt or a preamble), and away from a slot whose cache a process
//! still to resume needs (switched out, stopped or blocked, with no swap file), whatever the slot's
//! number. Only the first [`HEAD_BYTES`] of a conversation are compared: a few KiB tell apart the
//! preambles that matter, and comparing them costs nothing next to a request.

use crate::proto::ChatMessage;

/// Bytes of a conversation's beginning kept for each slot and compared.
pub const HEAD_BYTES: usize = 4096;

/// The beginning of `messages` as a server would read them: each message's role, then its text, cut
/// to [`HEAD_BYTES`] at a character boundary.
pub fn head(messages: &[ChatMessage]) -> String {
    let mut out = String::with_capacity(HEAD_BYTES);
    for m in messages {
        for piece in [m.role.as_str(), "\u{1}", m.content.as_str(), "\u{2}"] {
            let mut end = piece.len().min(HEAD_BYTES - out.len());
            while !piece.is_char_boundary(end) {
                end -= 1;
            }
            out.push_str(&piece[..end]);
            if out.len() + 4 > HEAD_BYTES {
                return out;
            }
        }
    }
    out
}

/// Bytes `a` and `b` have in common from their start.
pub fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Role;

    fn message(role: Role, content: &str) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn a_shared_system_prompt_is_a_common_beginning_and_roles_tell_texts_apart() {
        let a = head(&[
            message(Role::System, "be brief"),
            message(Role::User, "one"),
        ]);
        let b = head(&[
            message(Role::System, "be brief"),
            message(Role::User, "two"),
        ]);
        let c = head(&[message(Role::User, "be brief")]);
        assert!(common_prefix(&a, &b) > "be brief".len());
        assert_eq!(common_prefix(&a, &c), 0);
    }

    #[test]
    fn a_long_conversation_is_cut_at_a_character_boundary() {
        let long = "é".repeat(HEAD_BYTES);
        let h = head(&[message(Role::User, &long), message(Role::User, "more")]);
        assert!(h.len() <= HEAD_BYTES && h.len() > HEAD_BYTES - 4);
        assert!(h.ends_with('é'));
    }
}
