//! Session FSM.
