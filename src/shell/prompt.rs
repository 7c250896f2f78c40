//! The interactive prompt: `llmsh$ ` with no jobs, `llmsh[2]$ ` with two (running, stopped or
//! finished but not yet reported), so the user sees at a glance that something is in the background.
//! It reads the shared job table each time reedline paints it, so a job that ends while the user
//! types changes the count as its notice is printed. Continuation lines get `> `, as bash's PS2.

use super::jobs::SharedJobs;
use reedline::{Color, Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus};
use std::borrow::Cow;
use std::sync::PoisonError;

/// The prompt, showing how many jobs this shell has.
pub struct JobCountPrompt {
    jobs: SharedJobs,
}

impl JobCountPrompt {
    /// A prompt that counts the jobs in `jobs`.
    pub fn new(jobs: SharedJobs) -> JobCountPrompt {
        JobCountPrompt { jobs }
    }
}

/// The prompt's text for a number of jobs.
pub fn prompt_text(jobs: usize) -> String {
    match jobs {
        0 => "llmsh".to_string(),
        n => format!("llmsh[{n}]"),
    }
}

impl Prompt for JobCountPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        let jobs = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        Cow::Owned(prompt_text(jobs))
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("$ ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        // bash's words for Ctrl-R.
        let failed = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failed ",
        };
        Cow::Owned(format!("({failed}reverse-i-search)`{}': ", search.term))
    }

    fn get_prompt_color(&self) -> Color {
        Color::Green
    }

    fn get_indicator_color(&self) -> Color {
        Color::Default
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Pid;
    use crate::shell::jobs::JobState;

    #[test]
    fn prompt_shows_the_job_count_only_when_there_are_jobs() {
        let jobs = SharedJobs::default();
        let prompt = JobCountPrompt::new(jobs.clone());
        assert_eq!(prompt.render_prompt_left(), "llmsh");
        jobs.lock()
            .unwrap()
            .add(Pid(3), "query a", JobState::Running);
        jobs.lock()
            .unwrap()
            .add(Pid(4), "query b", JobState::Stopped);
        assert_eq!(prompt.render_prompt_left(), "llmsh[2]");
        assert_eq!(
            prompt.render_prompt_indicator(PromptEditMode::Default),
            "$ "
        );
    }
}
