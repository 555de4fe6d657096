//! The people who run a drill: what an organiser's, judge's or observer's account may do.

crate::named_enum! {
    /// What an account may do.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum AccountRole {
        /// Runs the drill: teams, timing, announcements, accounts.
        Organiser = "organiser",
        /// Rules on reports and appeals.
        Judge = "judge",
        /// Watches the drill as organisers see it (the live board, the console's views) and
        /// changes nothing.
        Observer = "observer",
    }
}
