//! Giving the floor to a deputy before a run, so that the programme the receivers pull is a
//! speaker's, as in most of a sitting: through the server's REST commands, the chair opens
//! the sitting (unless it is open) and sets the current item, the deputy checks in as
//! remote (carried by their own device) and the chair gives them the floor. The deputy then
//! publishes over WHIP like the chamber does.

use crate::signal::Server;
use anyhow::Context;
use serde_json::json;

/// The demo sitting's item the floor is given on (a debate).
const ITEM: u64 = 2;

/// Gives `deputy` the floor in `sitting` as `chair`; returns the deputy's token.
pub fn give(
    server: &Server,
    sitting: &str,
    chair: &str,
    deputy: &str,
    password: &str,
) -> anyhow::Result<String> {
    let chair_token = server
        .login(chair, password)
        .with_context(|| format!("the chair's login ({chair})"))?;
    let token = server
        .login(deputy, password)
        .with_context(|| format!("the floor holder's login ({deputy})"))?;
    let run = std::process::id();
    let key = |what: &str| format!("media-load-{run}-{what}");
    match server.command(
        sitting,
        &chair_token,
        &key("open"),
        &json!({"command": "open_sitting"}),
    ) {
        Ok(()) => {}
        // Already open: what follows says if it is closed instead.
        Err(r) if r.code == "wrong_phase" => {}
        Err(r) => return Err(r).context("the chair's open_sitting was refused"),
    }
    let steps = [
        (
            &chair_token,
            "item",
            json!({"command": "set_current_item", "item": ITEM}),
            "the chair's set_current_item".to_owned(),
        ),
        (
            &token,
            "check-in",
            json!({"command": "check_in", "deputy": deputy, "location": "remote"}),
            format!("{deputy}'s check_in"),
        ),
        (
            &chair_token,
            "floor",
            json!({"command": "give_floor", "deputy": deputy, "kind": "discussion"}),
            format!("the chair's give_floor to {deputy}"),
        ),
    ];
    for (as_who, what, command, said) in steps {
        server
            .command(sitting, as_who, &key(what), &command)
            .with_context(|| format!("{said} was refused"))?;
    }
    Ok(token)
}
