//! `crisisdesk calendar`, `schedule` and `student` commands.
