//! The minutes as a PDF (A4, Vietnamese or English), from the same model as the HTML page:
//! the sitting's times, attendance, each agenda item with its speeches and votes (roll calls
//! included), the documents, and the record (chain head and signed checkpoints). Laid out by
//! [`crate::pdf`]; the same minutes give the same bytes.

use super::render::{
    Lang, RenderError, Words, choice, duration, ended, kind, local_time, location, method, percent,
    rule, tallies, words,
};
use super::{Minutes, Vote, VoteOutcome};
use crate::pdf::Block;
use crate::sitting::Millis;

fn row(cells: &[(&str, f32)], bold: bool) -> Block {
    Block::Row {
        cells: cells.iter().map(|(t, w)| ((*t).to_owned(), *w)).collect(),
        bold,
    }
}

/// The PDF of the minutes.
pub fn pdf(m: &Minutes, lang: Lang) -> Result<Vec<u8>, RenderError> {
    let w = words(lang);
    let mut b = vec![Block::Title(format!("{} — {}", w.minutes, m.title))];
    let when = |t: Option<Millis>| t.map_or_else(|| w.not_yet.to_owned(), local_time);
    b.push(Block::Text(format!("{}: {}", w.sitting, m.sitting)));
    b.push(Block::Text(format!("{}: {}", w.opened, when(m.opened_at))));
    for s in &m.suspensions {
        let resumed = s
            .resumed_at
            .map(|r| format!(" — {} {}", w.resumed, local_time(r)))
            .unwrap_or_default();
        b.push(Block::Text(format!(
            "{}: {} ({}){resumed}",
            w.suspended,
            local_time(s.at),
            s.reason
        )));
    }
    b.push(Block::Text(format!("{}: {}", w.closed, when(m.closed_at))));
    b.push(Block::Text(format!("{}: {}", w.members, m.members)));
    b.push(Block::Note(w.time_note.to_owned()));

    b.push(Block::Heading(w.attendance.to_owned()));
    b.push(Block::Text(format!(
        "{}: {} / {}",
        w.present_at_end, m.present_at_end, m.members
    )));
    b.push(row(
        &[
            (w.deputy, 0.3),
            (w.delegation, 0.16),
            (w.checked_in, 0.16),
            (w.location, 0.14),
            (w.entered_by, 0.1),
            (w.checked_out, 0.14),
        ],
        true,
    ));
    for a in &m.attendance {
        let name = format!("{} ({})", a.deputy.name, a.deputy.id.as_str());
        let by = a
            .by_clerk
            .as_ref()
            .map_or_else(|| w.self_entry.to_owned(), |c| c.as_str().to_owned());
        let out = a.checked_out_at.map(local_time).unwrap_or_default();
        b.push(row(
            &[
                (&name, 0.3),
                (a.deputy.delegation.as_deref().unwrap_or(""), 0.16),
                (&local_time(a.checked_in_at), 0.16),
                (location(lang, a.location), 0.14),
                (&by, 0.1),
                (&out, 0.14),
            ],
            false,
        ));
    }

    b.push(Block::Heading(w.agenda.to_owned()));
    for (n, item) in m.items.iter().enumerate() {
        b.push(Block::Heading(format!("{}. {}", n + 1, item.title)));
        if item.speeches.is_empty() {
            b.push(Block::Note(w.no_speeches.to_owned()));
        } else {
            b.push(Block::Text(w.speeches.to_owned()));
            b.push(row(
                &[
                    (w.deputy, 0.24),
                    (w.delegation, 0.15),
                    (w.kind, 0.13),
                    (w.start, 0.16),
                    (w.duration, 0.1),
                    (w.extensions, 0.08),
                    (w.ended, 0.14),
                ],
                true,
            ));
            for s in &item.speeches {
                b.push(row(
                    &[
                        (&s.deputy.name, 0.24),
                        (s.deputy.delegation.as_deref().unwrap_or(""), 0.15),
                        (kind(lang, s.kind), 0.13),
                        (&local_time(s.started_at), 0.16),
                        (&duration(s.duration_secs), 0.1),
                        (&s.extensions.to_string(), 0.08),
                        (ended(lang, s.ended), 0.14),
                    ],
                    false,
                ));
            }
        }
        for id in &item.votes {
            if let Some(v) = m.votes.iter().find(|v| v.vote == *id) {
                vote(&mut b, w, lang, v);
            }
        }
    }

    if !m.documents.is_empty() {
        b.push(Block::Heading(w.documents.to_owned()));
        b.push(row(
            &[
                ("#", 0.06),
                (w.version, 0.1),
                (w.title, 0.4),
                (w.published, 0.18),
                ("SHA-256", 0.26),
            ],
            true,
        ));
        for d in &m.documents {
            for v in &d.versions {
                b.push(row(
                    &[
                        (&d.document.to_string(), 0.06),
                        (&v.version.to_string(), 0.1),
                        (&v.title, 0.4),
                        (&local_time(v.published_at), 0.18),
                        (&v.sha256, 0.26),
                    ],
                    false,
                ));
            }
        }
    }

    b.push(Block::Heading(w.record.to_owned()));
    b.push(Block::Text(format!(
        "{}: {} · {}",
        w.head, m.head.seq, m.head.hash
    )));
    b.push(Block::Text(w.checkpoints.to_owned()));
    if m.checkpoints.is_empty() {
        b.push(Block::Note(w.no_checkpoints.to_owned()));
    }
    for c in &m.checkpoints {
        b.push(Block::Note(format!(
            "seq {} · {} · {} · {} · {}: {} · sig: {}",
            c.seq,
            c.reason.text(),
            local_time(c.at),
            c.head,
            w.signed_by,
            c.public_key,
            c.signature
        )));
    }
    b.push(Block::Note(format!(
        "{}: {}",
        w.generated,
        local_time(m.generated_at)
    )));
    let code = match lang {
        Lang::Vi => "vi",
        Lang::En => "en",
    };
    let page = match lang {
        Lang::Vi => "Trang",
        Lang::En => "Page",
    };
    Ok(crate::pdf::render(
        &format!("{} — {}", w.minutes, m.title),
        code,
        &b,
        &format!("{} — {} · {page} {{page}}/{{pages}}", w.minutes, m.sitting),
    )?)
}

fn vote(b: &mut Vec<Block>, w: &Words, lang: Lang, v: &Vote) {
    b.push(Block::Heading(format!(
        "{} #{}: {}",
        w.votes, v.vote, v.question
    )));
    b.push(Block::Text(format!(
        "{}: {} · {}: {}",
        w.method,
        method(lang, v.method),
        w.rule,
        rule(lang, v.rule)
    )));
    if let Some(prior) = v.rerun_of {
        b.push(Block::Text(format!("{}: #{prior}", w.rerun_of)));
    }
    if v.step_up {
        b.push(Block::Text(format!("{}: ✓", w.passkey)));
    }
    match &v.outcome {
        VoteOutcome::Open => b.push(Block::Text(format!("{}: {}", w.result, w.open))),
        VoteOutcome::Voided { reason } => b.push(Block::Text(format!(
            "{}: {} ({reason})",
            w.result, w.voided
        ))),
        VoteOutcome::Closed { at, result } => {
            b.push(Block::Text(format!(
                "{}: {} · {}",
                w.result,
                if result.passed { w.passed } else { w.rejected },
                local_time(*at)
            )));
            b.push(Block::Text(format!(
                "{}: {} ({}) · {}: {}",
                w.took_part,
                result.participants,
                percent(result.participants_bp_of_members),
                w.present,
                result.present
            )));
            for (label, count, bp) in tallies(w, result) {
                b.push(Block::Text(format!(
                    "{label}: {count} ({} {})",
                    percent(bp),
                    w.of_members
                )));
            }
        }
    }
    if !v.roll_call.is_empty() {
        b.push(Block::Text(w.roll_call.to_owned()));
        b.push(row(
            &[
                (w.deputy, 0.27),
                (w.delegation, 0.14),
                (w.choice, 0.13),
                (w.changes, 0.08),
                (w.on_behalf, 0.24),
                (w.passkey, 0.14),
            ],
            true,
        ));
        for r in &v.roll_call {
            let name = format!("{} ({})", r.deputy.name, r.deputy.id.as_str());
            let behalf = r
                .on_behalf
                .as_ref()
                .map(|x| format!("{} ({})", x.clerk.as_str(), x.reason))
                .unwrap_or_default();
            b.push(row(
                &[
                    (&name, 0.27),
                    (r.deputy.delegation.as_deref().unwrap_or(""), 0.14),
                    (choice(w, r.choice), 0.13),
                    (&r.changes.to_string(), 0.08),
                    (&behalf, 0.24),
                    (if r.step_up { "✓" } else { "" }, 0.14),
                ],
                false,
            ));
        }
    }
    if !v.took_part.is_empty() {
        let names: Vec<String> = v
            .took_part
            .iter()
            .map(|p| format!("{} ({})", p.name, p.id.as_str()))
            .collect();
        b.push(Block::Text(format!(
            "{}: {}",
            w.took_part,
            names.join(", ")
        )));
    }
}
