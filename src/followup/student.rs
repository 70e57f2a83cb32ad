//! The student's record (一生一档): one timeline across every case,
//! screening, check-in and level change.
