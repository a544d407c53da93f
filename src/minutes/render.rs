//! The minutes as files: JSON (the whole model), HTML (a page to read, print or archive, in
//! Vietnamese or English) and CSV tables (attendance, speeches, roll calls: UTF-8 with a
//! byte-order mark, so a spreadsheet opens the Vietnamese names right). Times are shown in
//! Hanoi time (UTC+7). Nothing here reads a clock: the same minutes give the same bytes.

use super::{Minutes, Vote, VoteOutcome};
use crate::sitting::{Choice, FloorEndReason, Location, Method, Millis, PassRule, SpeechKind};
use std::fmt::Write as _;

/// The language of a rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Tiếng Việt (the record's language).
    Vi,
    /// English.
    En,
}

/// A CSV table of the minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// One row per check-in.
    Attendance,
    /// One row per speech.
    Speeches,
    /// One row per named ballot (secret votes: who took part, no choice).
    RollCall,
}

/// Why a rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// JSON serialization failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// CSV writing failed.
    #[error(transparent)]
    Csv(#[from] csv::Error),
    /// PDF writing failed.
    #[error(transparent)]
    Pdf(#[from] crate::pdf::PdfError),
}

/// Hanoi is UTC+7 all year.
const OFFSET_SECS: i64 = 7 * 3600;

/// `YYYY-MM-DD HH:MM:SS` in Hanoi time.
pub fn local_time(at: Millis) -> String {
    let secs = at.0.div_euclid(1000) + OFFSET_SECS;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::from("?"),
    }
}

pub(super) fn duration(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The whole minutes as pretty JSON.
pub fn json(m: &Minutes) -> Result<Vec<u8>, RenderError> {
    let mut out = serde_json::to_vec_pretty(m)?;
    out.push(b'\n');
    Ok(out)
}

pub(super) struct Words {
    pub(super) minutes: &'static str,
    pub(super) sitting: &'static str,
    pub(super) opened: &'static str,
    pub(super) closed: &'static str,
    pub(super) not_yet: &'static str,
    pub(super) suspended: &'static str,
    pub(super) resumed: &'static str,
    pub(super) members: &'static str,
    pub(super) attendance: &'static str,
    pub(super) present_at_end: &'static str,
    pub(super) deputy: &'static str,
    pub(super) delegation: &'static str,
    pub(super) checked_in: &'static str,
    pub(super) checked_out: &'static str,
    pub(super) location: &'static str,
    pub(super) entered_by: &'static str,
    pub(super) self_entry: &'static str,
    pub(super) agenda: &'static str,
    pub(super) speeches: &'static str,
    pub(super) no_speeches: &'static str,
    pub(super) kind: &'static str,
    pub(super) start: &'static str,
    pub(super) duration: &'static str,
    pub(super) extensions: &'static str,
    pub(super) ended: &'static str,
    pub(super) votes: &'static str,
    pub(super) question: &'static str,
    pub(super) method: &'static str,
    pub(super) rule: &'static str,
    pub(super) result: &'static str,
    pub(super) passed: &'static str,
    pub(super) rejected: &'static str,
    pub(super) voided: &'static str,
    pub(super) open: &'static str,
    pub(super) took_part: &'static str,
    pub(super) present: &'static str,
    pub(super) of_members: &'static str,
    pub(super) roll_call: &'static str,
    pub(super) choice: &'static str,
    pub(super) changes: &'static str,
    pub(super) on_behalf: &'static str,
    pub(super) passkey: &'static str,
    pub(super) rerun_of: &'static str,
    pub(super) documents: &'static str,
    pub(super) version: &'static str,
    pub(super) title: &'static str,
    pub(super) published: &'static str,
    pub(super) record: &'static str,
    pub(super) head: &'static str,
    pub(super) checkpoints: &'static str,
    pub(super) no_checkpoints: &'static str,
    pub(super) reason: &'static str,
    pub(super) signed_by: &'static str,
    pub(super) signed_at: &'static str,
    pub(super) generated: &'static str,
    pub(super) time_note: &'static str,
    pub(super) yes: &'static str,
    pub(super) no: &'static str,
    pub(super) abstain: &'static str,
}

const VI: Words = Words {
    minutes: "Biên bản phiên họp",
    sitting: "Phiên họp",
    opened: "Khai mạc",
    closed: "Bế mạc",
    not_yet: "chưa",
    suspended: "Tạm nghỉ",
    resumed: "họp lại",
    members: "Tổng số đại biểu",
    attendance: "Điểm danh",
    present_at_end: "Có mặt khi kết thúc biên bản",
    deputy: "Đại biểu",
    delegation: "Đoàn",
    checked_in: "Điểm danh lúc",
    checked_out: "Rời phiên lúc",
    location: "Nơi tham dự",
    entered_by: "Người ghi",
    self_entry: "tự điểm danh",
    agenda: "Chương trình nghị sự",
    speeches: "Phát biểu",
    no_speeches: "Không có phát biểu.",
    kind: "Hình thức",
    start: "Bắt đầu",
    duration: "Thời lượng",
    extensions: "Gia hạn",
    ended: "Kết thúc",
    votes: "Biểu quyết",
    question: "Nội dung",
    method: "Hình thức",
    rule: "Điều kiện thông qua",
    result: "Kết quả",
    passed: "Thông qua",
    rejected: "Không thông qua",
    voided: "Đã hủy",
    open: "Đang mở",
    took_part: "Tham gia biểu quyết",
    present: "có mặt",
    of_members: "tổng số đại biểu",
    roll_call: "Danh sách biểu quyết",
    choice: "Phương án",
    changes: "Số lần đổi",
    on_behalf: "Thư ký ghi thay (lý do)",
    passkey: "Xác nhận bằng khóa truy cập",
    rerun_of: "Biểu quyết lại lần",
    documents: "Tài liệu",
    version: "Phiên bản",
    title: "Tiêu đề",
    published: "Đăng lúc",
    record: "Tính toàn vẹn của biên bản",
    head: "Sự kiện cuối và mã băm chuỗi",
    checkpoints: "Điểm kiểm tra đã ký (ed25519)",
    no_checkpoints: "Chưa có điểm kiểm tra đã ký.",
    reason: "Lý do",
    signed_by: "Khóa công khai",
    signed_at: "Ký lúc",
    generated: "Lập lúc",
    time_note: "Giờ Hà Nội (UTC+7).",
    yes: "Tán thành",
    no: "Không tán thành",
    abstain: "Không biểu quyết",
};

const EN: Words = Words {
    minutes: "Minutes of the sitting",
    sitting: "Sitting",
    opened: "Opened",
    closed: "Closed",
    not_yet: "not yet",
    suspended: "Suspended",
    resumed: "resumed",
    members: "Total membership",
    attendance: "Attendance",
    present_at_end: "Present at the end of these minutes",
    deputy: "Deputy",
    delegation: "Delegation",
    checked_in: "Checked in",
    checked_out: "Left",
    location: "Attending from",
    entered_by: "Entered by",
    self_entry: "themself",
    agenda: "Agenda",
    speeches: "Speeches",
    no_speeches: "No speeches.",
    kind: "Kind",
    start: "Start",
    duration: "Duration",
    extensions: "Extensions",
    ended: "Ended",
    votes: "Votes",
    question: "Question",
    method: "Method",
    rule: "Needed to pass",
    result: "Result",
    passed: "Passed",
    rejected: "Not passed",
    voided: "Voided",
    open: "Open",
    took_part: "Took part",
    present: "present",
    of_members: "of all deputies",
    roll_call: "Roll call",
    choice: "Choice",
    changes: "Changes",
    on_behalf: "Entered by a clerk (reason)",
    passkey: "Confirmed with a passkey",
    rerun_of: "Re-run of vote",
    documents: "Documents",
    version: "Version",
    title: "Title",
    published: "Published",
    record: "Integrity of the record",
    head: "Last event and chain hash",
    checkpoints: "Signed checkpoints (ed25519)",
    no_checkpoints: "No signed checkpoint yet.",
    reason: "Reason",
    signed_by: "Public key",
    signed_at: "Signed",
    generated: "Generated",
    time_note: "Hanoi time (UTC+7).",
    yes: "Yes",
    no: "No",
    abstain: "Abstain",
};

pub(super) fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Vi => &VI,
        Lang::En => &EN,
    }
}

pub(super) fn choice(w: &Words, c: Choice) -> &'static str {
    match c {
        Choice::Yes => w.yes,
        Choice::No => w.no,
        Choice::Abstain => w.abstain,
    }
}

pub(super) fn kind(lang: Lang, k: SpeechKind) -> &'static str {
    match (lang, k) {
        (Lang::Vi, SpeechKind::Discussion) => "Thảo luận",
        (Lang::Vi, SpeechKind::Debate) => "Tranh luận",
        (Lang::Vi, SpeechKind::PointOfOrder) => "Kiến nghị về thủ tục",
        (Lang::Vi, SpeechKind::Question) => "Chất vấn",
        (Lang::En, SpeechKind::Discussion) => "Discussion",
        (Lang::En, SpeechKind::Debate) => "Debate",
        (Lang::En, SpeechKind::PointOfOrder) => "Point of order",
        (Lang::En, SpeechKind::Question) => "Question",
    }
}

pub(super) fn location(lang: Lang, l: Option<Location>) -> &'static str {
    match (lang, l) {
        (Lang::Vi, Some(Location::Hall)) => "Tại hội trường",
        (Lang::Vi, Some(Location::Site)) => "Tại điểm cầu của đoàn",
        (Lang::Vi, Some(Location::Remote)) => "Trực tuyến từ xa",
        (Lang::En, Some(Location::Hall)) => "In the hall",
        (Lang::En, Some(Location::Site)) => "At the delegation's site",
        (Lang::En, Some(Location::Remote)) => "Remote",
        (_, None) => "",
    }
}

pub(super) fn ended(lang: Lang, r: Option<FloorEndReason>) -> &'static str {
    match (lang, r) {
        (Lang::Vi, Some(FloorEndReason::Yielded)) => "Tự kết thúc",
        (Lang::Vi, Some(FloorEndReason::Expired)) => "Hết giờ",
        (Lang::Vi, Some(FloorEndReason::Revoked)) => "Chủ tọa dừng",
        (Lang::Vi, Some(FloorEndReason::Superseded)) => "Chuyển người phát biểu",
        (Lang::Vi, Some(FloorEndReason::SittingInterrupted)) => "Phiên họp tạm dừng",
        (Lang::En, Some(FloorEndReason::Yielded)) => "Yielded",
        (Lang::En, Some(FloorEndReason::Expired)) => "Time ran out",
        (Lang::En, Some(FloorEndReason::Revoked)) => "Taken back by the chair",
        (Lang::En, Some(FloorEndReason::Superseded)) => "Floor given to another",
        (Lang::En, Some(FloorEndReason::SittingInterrupted)) => "Sitting interrupted",
        (Lang::Vi, None) => "Đang phát biểu",
        (Lang::En, None) => "Still speaking",
    }
}

pub(super) fn method(lang: Lang, m: Method) -> &'static str {
    match (lang, m) {
        (Lang::Vi, Method::Named) => "Biểu quyết công khai (ghi danh)",
        (Lang::Vi, Method::Secret) => "Bỏ phiếu kín",
        (Lang::En, Method::Named) => "Named (roll-call) vote",
        (Lang::En, Method::Secret) => "Secret ballot",
    }
}

pub(super) fn rule(lang: Lang, r: PassRule) -> &'static str {
    match (lang, r) {
        (Lang::Vi, PassRule::MajorityOfMembers) => "Quá nửa tổng số đại biểu",
        (Lang::Vi, PassRule::TwoThirdsOfMembers) => "Ít nhất hai phần ba tổng số đại biểu",
        (Lang::Vi, PassRule::MajorityOfPresent) => "Quá nửa số đại biểu có mặt",
        (Lang::En, PassRule::MajorityOfMembers) => "More than half of all deputies",
        (Lang::En, PassRule::TwoThirdsOfMembers) => "At least two thirds of all deputies",
        (Lang::En, PassRule::MajorityOfPresent) => "More than half of those present",
    }
}

/// Basis points as a percentage with two decimals.
/// A closed vote's three counts, each with its label and its share of the membership.
pub(super) fn tallies(w: &Words, r: &crate::sitting::VoteResult) -> [(&'static str, u32, u32); 3] {
    [
        (w.yes, r.tally.yes, r.yes_bp_of_members),
        (w.no, r.tally.no, r.no_bp_of_members),
        (w.abstain, r.tally.abstain, r.abstain_bp_of_members),
    ]
}

pub(super) fn percent(bp: u32) -> String {
    format!("{}.{:02} %", bp / 100, bp % 100)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The minutes as one HTML page (no script; its styles inline in a `<style>` element).
pub fn html(m: &Minutes, lang: Lang) -> Vec<u8> {
    let w = words(lang);
    let mut o = String::new();
    let code = match lang {
        Lang::Vi => "vi",
        Lang::En => "en",
    };
    let _ = writeln!(
        o,
        "<!doctype html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {}</title>\n<style>{}</style>\n</head>\n<body>",
        w.minutes,
        esc(&m.title),
        STYLE
    );
    let _ = writeln!(
        o,
        "<h1>{}</h1>\n<p class=\"title\">{}</p>\n<dl>\n<dt>{}</dt><dd>{}</dd>",
        w.minutes,
        esc(&m.title),
        w.sitting,
        esc(&m.sitting)
    );
    let when = |t: Option<Millis>| t.map_or_else(|| w.not_yet.to_owned(), local_time);
    let _ = writeln!(
        o,
        "<dt>{}</dt><dd>{}</dd>\n<dt>{}</dt><dd>{}</dd>\n<dt>{}</dt><dd>{}</dd>",
        w.opened,
        when(m.opened_at),
        w.closed,
        when(m.closed_at),
        w.members,
        m.members
    );
    for s in &m.suspensions {
        let _ = writeln!(
            o,
            "<dt>{}</dt><dd>{} ({}){}</dd>",
            w.suspended,
            local_time(s.at),
            esc(&s.reason),
            s.resumed_at
                .map(|r| format!(" — {} {}", w.resumed, local_time(r)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(o, "</dl>\n<p class=\"note\">{}</p>", w.time_note);

    // Attendance.
    let _ = writeln!(
        o,
        "<h2>{}</h2>\n<p>{}: {} / {}</p>\n<table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        w.attendance,
        w.present_at_end,
        m.present_at_end,
        m.members,
        w.deputy,
        w.delegation,
        w.checked_in,
        w.location,
        w.entered_by,
        w.checked_out
    );
    for a in &m.attendance {
        let _ = writeln!(
            o,
            "<tr><td>{} <small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.deputy.name),
            esc(a.deputy.id.as_str()),
            esc(a.deputy.delegation.as_deref().unwrap_or("")),
            local_time(a.checked_in_at),
            location(lang, a.location),
            a.by_clerk
                .as_ref()
                .map_or_else(|| w.self_entry.to_owned(), |c| esc(c.as_str())),
            a.checked_out_at.map(local_time).unwrap_or_default()
        );
    }
    o.push_str("</tbody>\n</table>\n");

    // The agenda with its speeches and votes.
    let _ = writeln!(o, "<h2>{}</h2>", w.agenda);
    for (n, item) in m.items.iter().enumerate() {
        let _ = writeln!(o, "<h3>{}. {}</h3>", n + 1, esc(&item.title));
        if item.speeches.is_empty() {
            let _ = writeln!(o, "<p class=\"note\">{}</p>", w.no_speeches);
        } else {
            let _ = writeln!(
                o,
                "<table>\n<caption>{}</caption>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
                w.speeches,
                w.deputy,
                w.delegation,
                w.kind,
                w.start,
                w.duration,
                w.extensions,
                w.ended
            );
            for s in &item.speeches {
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&s.deputy.name),
                    esc(s.deputy.delegation.as_deref().unwrap_or("")),
                    kind(lang, s.kind),
                    local_time(s.started_at),
                    duration(s.duration_secs),
                    s.extensions,
                    ended(lang, s.ended)
                );
            }
            o.push_str("</tbody>\n</table>\n");
        }
        for id in &item.votes {
            if let Some(v) = m.votes.iter().find(|v| v.vote == *id) {
                vote_html(&mut o, w, lang, v);
            }
        }
    }

    // Documents.
    if !m.documents.is_empty() {
        let _ = writeln!(
            o,
            "<h2>{}</h2>\n<table>\n<thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>SHA-256</th></tr></thead>\n<tbody>",
            w.documents, w.version, w.title, w.published
        );
        for d in &m.documents {
            for v in &d.versions {
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                    d.document,
                    v.version,
                    esc(&v.title),
                    local_time(v.published_at),
                    esc(&v.sha256)
                );
            }
        }
        o.push_str("</tbody>\n</table>\n");
    }

    // The record.
    let _ = writeln!(
        o,
        "<h2>{}</h2>\n<p>{}: <b>{}</b> · <span class=\"mono\">{}</span></p>\n<h3>{}</h3>",
        w.record,
        w.head,
        m.head.seq,
        esc(&m.head.hash),
        w.checkpoints
    );
    if m.checkpoints.is_empty() {
        let _ = writeln!(o, "<p class=\"note\">{}</p>", w.no_checkpoints);
    } else {
        let _ = writeln!(
            o,
            "<table>\n<thead><tr><th>seq</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
            w.reason, w.signed_at, w.head
        );
        for c in &m.checkpoints {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}<br>{}: {}<br>sig: {}</td></tr>",
                c.seq,
                esc(&c.reason.text()),
                local_time(c.at),
                esc(&c.head),
                w.signed_by,
                esc(&c.public_key),
                esc(&c.signature)
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
    let _ = writeln!(
        o,
        "<p class=\"note\">{}: {}</p>\n</body>\n</html>",
        w.generated,
        local_time(m.generated_at)
    );
    o.into_bytes()
}

fn vote_html(o: &mut String, w: &Words, lang: Lang, v: &Vote) {
    let _ = writeln!(
        o,
        "<section class=\"vote\">\n<h4>{} #{}: {}</h4>\n<dl>\n<dt>{}</dt><dd>{}</dd>\n<dt>{}</dt><dd>{}</dd>",
        w.votes,
        v.vote,
        esc(&v.question),
        w.method,
        method(lang, v.method),
        w.rule,
        rule(lang, v.rule)
    );
    if let Some(prior) = v.rerun_of {
        let _ = writeln!(o, "<dt>{}</dt><dd>#{}</dd>", w.rerun_of, prior);
    }
    if v.step_up {
        let _ = writeln!(o, "<dt>{}</dt><dd>✓</dd>", w.passkey);
    }
    match &v.outcome {
        VoteOutcome::Open => {
            let _ = writeln!(o, "<dt>{}</dt><dd>{}</dd>", w.result, w.open);
        }
        VoteOutcome::Voided { reason } => {
            let _ = writeln!(
                o,
                "<dt>{}</dt><dd>{} ({})</dd>",
                w.result,
                w.voided,
                esc(reason)
            );
        }
        VoteOutcome::Closed { at, result } => {
            let _ = writeln!(
                o,
                "<dt>{}</dt><dd><b>{}</b> · {}</dd>\n<dt>{}</dt><dd>{} ({}) · {}: {}</dd>",
                w.result,
                if result.passed { w.passed } else { w.rejected },
                local_time(*at),
                w.took_part,
                result.participants,
                percent(result.participants_bp_of_members),
                w.present,
                result.present
            );
            for (label, count, bp) in tallies(w, result) {
                let _ = writeln!(
                    o,
                    "<dt>{label}</dt><dd>{count} ({} {})</dd>",
                    percent(bp),
                    w.of_members
                );
            }
        }
    }
    o.push_str("</dl>\n");
    if !v.roll_call.is_empty() {
        let _ = writeln!(
            o,
            "<table>\n<caption>{}</caption>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
            w.roll_call, w.deputy, w.delegation, w.choice, w.changes, w.on_behalf, w.passkey
        );
        for r in &v.roll_call {
            let _ = writeln!(
                o,
                "<tr><td>{} <small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.deputy.name),
                esc(r.deputy.id.as_str()),
                esc(r.deputy.delegation.as_deref().unwrap_or("")),
                choice(w, r.choice),
                r.changes,
                r.on_behalf
                    .as_ref()
                    .map(|b| format!("{} ({})", esc(b.clerk.as_str()), esc(&b.reason)))
                    .unwrap_or_default(),
                if r.step_up { "✓" } else { "" }
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
    if !v.took_part.is_empty() {
        let names: Vec<String> = v
            .took_part
            .iter()
            .map(|p| format!("{} ({})", esc(&p.name), esc(p.id.as_str())))
            .collect();
        let _ = writeln!(o, "<p>{}: {}</p>", w.took_part, names.join(", "));
    }
    o.push_str("</section>\n");
}

const STYLE: &str = "body{font-family:'Noto Serif','DejaVu Serif','Times New Roman',serif;\
max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#111}\
h1{font-size:1.6rem;margin-bottom:.2rem}.title{font-size:1.2rem;font-weight:700;margin-top:0}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:700}dd{margin:0}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.92rem}\
th,td{border:1px solid #999;padding:.25rem .4rem;text-align:left;vertical-align:top}\
caption{text-align:left;font-weight:700;padding:.3rem 0}.note{color:#555;font-size:.9rem}\
.mono{font-family:monospace;font-size:.8rem;word-break:break-all}\
section.vote{border-left:3px solid #a31515;padding-left:.8rem;margin:1rem 0}\
@media (max-width:40rem){dl{grid-template-columns:1fr}dd{margin-bottom:.3rem}\
table{display:block;overflow-x:auto}}\
@media print{body{margin:0;max-width:none}}";

/// One table of the minutes as CSV (UTF-8 with a byte-order mark).
pub fn csv(m: &Minutes, table: Table, lang: Lang) -> Result<Vec<u8>, RenderError> {
    let w = words(lang);
    let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    match table {
        Table::Attendance => {
            out.write_record([
                "code",
                w.deputy,
                w.delegation,
                w.checked_in,
                w.location,
                w.entered_by,
                w.checked_out,
            ])?;
            for a in &m.attendance {
                out.write_record([
                    a.deputy.id.as_str(),
                    &a.deputy.name,
                    a.deputy.delegation.as_deref().unwrap_or(""),
                    &local_time(a.checked_in_at),
                    location(lang, a.location),
                    a.by_clerk.as_ref().map_or("", |c| c.as_str()),
                    &a.checked_out_at.map(local_time).unwrap_or_default(),
                ])?;
            }
        }
        Table::Speeches => {
            out.write_record([
                "item",
                w.title,
                "code",
                w.deputy,
                w.delegation,
                w.kind,
                w.start,
                "seconds",
                w.extensions,
                w.ended,
            ])?;
            for item in &m.items {
                for s in &item.speeches {
                    out.write_record([
                        item.item.to_string().as_str(),
                        &item.title,
                        s.deputy.id.as_str(),
                        &s.deputy.name,
                        s.deputy.delegation.as_deref().unwrap_or(""),
                        kind(lang, s.kind),
                        &local_time(s.started_at),
                        &s.duration_secs.to_string(),
                        &s.extensions.to_string(),
                        ended(lang, s.ended),
                    ])?;
                }
            }
        }
        Table::RollCall => {
            out.write_record([
                "vote",
                w.question,
                "code",
                w.deputy,
                w.delegation,
                w.choice,
                w.changes,
                "clerk",
                w.reason,
                w.passkey,
            ])?;
            for v in &m.votes {
                for r in &v.roll_call {
                    let (clerk, reason) = r
                        .on_behalf
                        .as_ref()
                        .map_or(("", ""), |b| (b.clerk.as_str(), b.reason.as_str()));
                    out.write_record([
                        v.vote.to_string().as_str(),
                        &v.question,
                        r.deputy.id.as_str(),
                        &r.deputy.name,
                        r.deputy.delegation.as_deref().unwrap_or(""),
                        choice(w, r.choice),
                        &r.changes.to_string(),
                        clerk,
                        reason,
                        if r.step_up { "1" } else { "" },
                    ])?;
                }
                // A secret vote: who took part, never what they chose.
                for p in &v.took_part {
                    out.write_record([
                        v.vote.to_string().as_str(),
                        &v.question,
                        p.id.as_str(),
                        &p.name,
                        p.delegation.as_deref().unwrap_or(""),
                        "",
                        "",
                        "",
                        "",
                        "",
                    ])?;
                }
            }
        }
    }
    out.flush().map_err(csv::Error::from)?;
    out.into_inner()
        .map_err(|e| RenderError::Csv(csv::Error::from(e.into_error())))
}
