// The strings of every page, one table per language (Vietnamese first, English), the
// server's error codes as sentences, and the language switch. Pages never show a server
// message raw: they show `errorText(code)`.

export const STRINGS = {
  vi: {
    other: "English", appName: "Phiên họp trực tuyến", loading: "Đang tải…",
    code: "Mã tài khoản", password: "Mật khẩu", login: "Đăng nhập", logout: "Đăng xuất",
    loginTitle: "Đăng nhập hệ thống", loginHelp: "Đại biểu, chủ tọa, thư ký và điểm cầu đăng nhập bằng mã tài khoản được cấp.",
    loginFailed: "Sai mã tài khoản hoặc mật khẩu.", loginExpired: "Phiên đăng nhập đã hết hạn. Xin đăng nhập lại.",
    loginThrottled: "Đăng nhập sai quá nhiều lần. Xin chờ một phút.", loginUnavailable: "Máy chủ tạm thời không phản hồi. Xin thử lại.",
    online: "Đã kết nối", reconnecting: "Mất kết nối — đang kết nối lại…", offline: "Không có mạng — đang chờ kết nối lại…",
    pendingCommands: "lệnh đang chờ gửi lại",
    // Phases
    phase_uncreated: "Chưa tạo", phase_scheduled: "Chưa khai mạc", phase_open: "Đang họp", phase_suspended: "Tạm nghỉ", phase_closed: "Đã bế mạc",
    // Roles
    role_chair: "Chủ tọa", role_vice_chair: "Phó chủ tọa", role_clerk: "Thư ký", role_deputy: "Đại biểu",
    role_site_operator: "Điểm cầu", role_observer: "Quan sát viên",
    // Speech kinds
    kind_discussion: "Thảo luận", kind_debate: "Tranh luận", kind_point_of_order: "Kiến nghị về thủ tục", kind_question: "Chất vấn",
    // Locations
    loc_hall: "Tại hội trường", loc_site: "Tại điểm cầu của đoàn", loc_remote: "Trực tuyến từ xa",
    // Choices
    choice_yes: "Tán thành", choice_no: "Không tán thành", choice_abstain: "Không biểu quyết",
    method_named: "Biểu quyết công khai (ghi danh)", method_secret: "Bỏ phiếu kín",
    rule_majority_of_members: "Quá nửa tổng số đại biểu", rule_two_thirds_of_members: "Ít nhất hai phần ba tổng số đại biểu",
    rule_majority_of_present: "Quá nửa số đại biểu có mặt",
    // Common labels
    speaker: "Đang phát biểu", nobody: "Chưa có đại biểu phát biểu", remaining: "Thời gian còn lại", queue: "Đăng ký phát biểu",
    queueEmpty: "Chưa có đại biểu đăng ký", agenda: "Chương trình nghị sự", currentItem: "Nội dung đang thảo luận", noItem: "Chưa chọn nội dung",
    present: "Có mặt", members: "Tổng số đại biểu", quorum: "Đủ số lượng để họp", noQuorum: "Chưa đủ số lượng", attendance: "Điểm danh",
    documents: "Tài liệu", noDocuments: "Chưa có tài liệu", version: "Phiên bản", isNew: "Mới", changed: "Đã cập nhật", open: "Mở",
    vote: "Biểu quyết", voteOpen: "Đang biểu quyết", noVote: "Không có biểu quyết đang mở", votes: "Các lần biểu quyết",
    voted: "Đã biểu quyết", ofMembers: "tổng số đại biểu", passed: "Được thông qua", failed: "Không được thông qua",
    voided: "Đã hủy", participants: "Số đại biểu tham gia", result: "Kết quả", secretNote: "Phiếu kín: không ai biết đại biểu đã chọn gì.",
    timeLeft: "Còn", seconds: "giây", programme: "Truyền hình trực tiếp", delegation: "Đoàn", where: "Nơi tham dự",
    you: "Bạn", position: "Thứ tự", kind: "Loại", reason: "Lý do", actions: "Thao tác", none: "—",
    onBehalf: "do thư ký ghi thay", by: "bởi",
    // Deputy app
    deputyTitle: "Đại biểu", checkIn: "Điểm danh", checkOut: "Rời phiên họp", checkedIn: "Đã điểm danh", notCheckedIn: "Chưa điểm danh",
    whereSit: "Bạn tham dự ở đâu?", askToSpeak: "Đăng ký phát biểu", withdraw: "Rút đăng ký", yourPlace: "Thứ tự của bạn",
    youHaveFloor: "Bạn đang phát biểu", yieldFloor: "Kết thúc phát biểu", cameraLive: "Camera và micro của bạn đang phát",
    cameraStarting: "Đang bật camera và micro…", cameraFailed: "Không mở được camera hoặc micro",
    castHelp: "Chọn một phương án", recorded: "Đã ghi nhận phiếu của bạn", changeAllowed: "Bạn có thể đổi phiếu trước khi kết thúc.",
    ballotFinal: "Phiếu đã ghi nhận không thể thay đổi.", sending: "Đang gửi…", waitOpen: "Phiên họp chưa khai mạc.",
    newDocs: "tài liệu mới",
    // Chair console
    budgetsTitle: "Thời gian phát biểu còn lại của các đoàn (nội dung này)", budgetUsed: "đã hết", budgetsNone: "Chưa đoàn nào phát biểu về nội dung này.",
    chairTitle: "Bàn chủ tọa", openSitting: "Khai mạc", suspendSitting: "Tạm nghỉ", resumeSitting: "Tiếp tục", closeSitting: "Bế mạc",
    suspendReason: "Lý do tạm nghỉ", nextItem: "Chuyển nội dung tiếp theo", setCurrent: "Chọn", grant: "Mời phát biểu", giveFloor: "Mời đại biểu",
    extend: "Thêm thời gian", extendBy: "Thêm (giây)", revoke: "Dừng phát biểu", moveUp: "Lên", moveDown: "Xuống", remove: "Xóa",
    openVoteTitle: "Mở biểu quyết", question: "Nội dung biểu quyết", method: "Hình thức", rule: "Điều kiện thông qua",
    window: "Thời gian (giây)", allowChange: "Cho phép đổi phiếu", openVote: "Mở biểu quyết", closeVote: "Kết thúc biểu quyết",
    voidVote: "Hủy kết quả", voidReason: "Lý do hủy", rerun: "Biểu quyết lại", liveTally: "Kết quả tạm thời", byDelegation: "Theo đoàn",
    sites: "Các điểm cầu", mute: "Tắt micro", unmute: "Bật micro", deputyCode: "Mã đại biểu", confirmClose: "Bế mạc phiên họp?",
    // Clerk station
    clerkTitle: "Thư ký", rollCall: "Danh sách biểu quyết", recordBallot: "Ghi phiếu thay đại biểu", recordCheckIn: "Điểm danh thay đại biểu",
    record: "Ghi nhận", publish: "Đăng tài liệu", publishVersion: "Đăng phiên bản mới", title: "Tiêu đề", mediaType: "Loại tệp", size: "Dung lượng (byte)",
    sha256: "Mã băm SHA-256", access: "Quyền xem", access_public: "Công khai", access_deputies: "Đại biểu và cán bộ", access_restricted: "Hạn chế",
    item: "Nội dung", countsOnly: "Phiếu kín: chỉ có số phiếu.", notVoted: "Chưa biểu quyết", document: "Tài liệu",
    // Room and display
    roomTitle: "Điểm cầu", displayTitle: "Màn hình hội trường", start: "Bắt đầu phát", stop: "Dừng phát",
    idle: "Chưa kết nối", connecting: "Đang kết nối…", live: "Đang phát", receiving: "Đang nhận hình",
    lost: "Mất kết nối — đang thử lại…", stopped: "Đã dừng", noDevice: "Không mở được camera hoặc micro",
    refused: "Máy chủ từ chối", full: "Máy chủ hình ảnh đang đầy; sẽ tự thử lại", frames: "khung hình đã giải mã", siteDeputies: "Đại biểu của đoàn",
    roomHelp: "Micro của điểm cầu chỉ được phát tới hội trường khi chủ tọa cho đại biểu của đoàn phát biểu.",
    publicNote: "Trang trạng thái công khai.", events: "Sự kiện đã ghi", error: "Không tải được trạng thái",
    votesCounted: "đã biểu quyết", soundOn: "Bật tiếng", soundOff: "Tắt tiếng",
    cancel: "Hủy", confirmCloseHelp: "Sau khi bế mạc, phiên họp không thể mở lại; mọi thao tác đều đã được ghi lại.",
    // Passkeys
    passkeys: "Khóa truy cập", passkeyHelp: "Khóa truy cập (vân tay, khuôn mặt hoặc mã PIN của thiết bị) dùng để xác nhận phiếu khi chủ tọa yêu cầu.",
    passkeyNone: "Chưa đăng ký khóa truy cập trên tài khoản này.", passkeyCount: "Số khóa truy cập đã đăng ký",
    registerPasskey: "Đăng ký khóa truy cập", passkeyRegistered: "Đã đăng ký khóa truy cập.",
    passkeyUnsupported: "Trình duyệt này không hỗ trợ khóa truy cập.",
    stepUpNote: "Biểu quyết này yêu cầu xác nhận mỗi phiếu bằng khóa truy cập.", stepUpOpen: "Xác nhận từng phiếu bằng khóa truy cập",
    confirming: "Xin xác nhận bằng khóa truy cập…", voteNeedsQuorum: "Chưa đủ số lượng: biểu quyết chỉ mở được khi đủ số đại biểu có mặt.", stepUpClerk: "cần xác nhận bằng khóa truy cập của bạn",
  },
  en: {
    other: "Tiếng Việt", appName: "Hybrid sitting", loading: "Loading…",
    code: "Account code", password: "Password", login: "Log in", logout: "Log out",
    loginTitle: "Log in", loginHelp: "Deputies, the chair, clerks and delegation sites log in with the code they were given.",
    loginFailed: "Wrong code or password.", loginExpired: "Your session has expired. Please log in again.",
    loginThrottled: "Too many failed attempts. Please wait a minute.", loginUnavailable: "The server is not answering. Please try again.",
    online: "Connected", reconnecting: "Connection lost — reconnecting…", offline: "No network — waiting to reconnect…",
    pendingCommands: "commands waiting to be resent",
    phase_uncreated: "Not created", phase_scheduled: "Not yet opened", phase_open: "In session", phase_suspended: "Suspended", phase_closed: "Closed",
    role_chair: "Chair", role_vice_chair: "Vice-chair", role_clerk: "Clerk", role_deputy: "Deputy",
    role_site_operator: "Delegation site", role_observer: "Observer",
    kind_discussion: "Discussion", kind_debate: "Debate", kind_point_of_order: "Point of order", kind_question: "Question",
    loc_hall: "In the hall", loc_site: "At my delegation's site", loc_remote: "Remote",
    choice_yes: "Yes", choice_no: "No", choice_abstain: "Abstain",
    method_named: "Named (roll-call) vote", method_secret: "Secret ballot",
    rule_majority_of_members: "More than half of all deputies", rule_two_thirds_of_members: "At least two thirds of all deputies",
    rule_majority_of_present: "More than half of those present",
    speaker: "Speaking", nobody: "Nobody has the floor", remaining: "Time left", queue: "Requests to speak",
    queueEmpty: "No requests", agenda: "Agenda", currentItem: "Current item", noItem: "No item chosen",
    present: "Present", members: "Total deputies", quorum: "Quorum met", noQuorum: "No quorum", attendance: "Attendance",
    documents: "Documents", noDocuments: "No documents yet", version: "Version", isNew: "New", changed: "Updated", open: "Open",
    vote: "Vote", voteOpen: "Vote open", noVote: "No vote open", votes: "Votes",
    voted: "Voted", ofMembers: "of all deputies", passed: "Passed", failed: "Not passed",
    voided: "Voided", participants: "Deputies who voted", result: "Result", secretNote: "Secret ballot: nobody can tell what a deputy chose.",
    timeLeft: "Left", seconds: "s", programme: "Live programme", delegation: "Delegation", where: "Attending from",
    you: "You", position: "Place", kind: "Kind", reason: "Reason", actions: "Actions", none: "—",
    onBehalf: "recorded by a clerk", by: "by",
    deputyTitle: "Deputy", checkIn: "Check in", checkOut: "Leave the sitting", checkedIn: "Checked in", notCheckedIn: "Not checked in",
    whereSit: "Where are you attending from?", askToSpeak: "Ask to speak", withdraw: "Withdraw", yourPlace: "Your place",
    youHaveFloor: "You have the floor", yieldFloor: "Finish speaking", cameraLive: "Your camera and microphone are live",
    cameraStarting: "Starting your camera and microphone…", cameraFailed: "Could not open the camera or microphone",
    castHelp: "Choose one", recorded: "Your ballot is recorded", changeAllowed: "You may change it until the vote closes.",
    ballotFinal: "A recorded ballot cannot be changed.", sending: "Sending…", waitOpen: "The sitting has not been opened yet.",
    newDocs: "new documents",
    budgetsTitle: "Speaking time left per delegation (this item)", budgetUsed: "used up", budgetsNone: "No delegation has spoken on this item yet.",
    chairTitle: "Chair console", openSitting: "Open the sitting", suspendSitting: "Suspend", resumeSitting: "Resume", closeSitting: "Close the sitting",
    suspendReason: "Reason for the recess", nextItem: "Next agenda item", setCurrent: "Take up", grant: "Give the floor", giveFloor: "Give the floor to",
    extend: "Extend", extendBy: "Extend by (s)", revoke: "Stop the speaker", moveUp: "Up", moveDown: "Down", remove: "Remove",
    openVoteTitle: "Open a vote", question: "Question", method: "Method", rule: "Needed to pass",
    window: "Window (s)", allowChange: "Ballots may be changed", openVote: "Open the vote", closeVote: "Close the vote",
    voidVote: "Void", voidReason: "Reason for voiding", rerun: "Run again", liveTally: "Live count", byDelegation: "By delegation",
    sites: "Delegation sites", mute: "Mute", unmute: "Unmute", deputyCode: "Deputy code", confirmClose: "Close the sitting?",
    clerkTitle: "Clerk station", rollCall: "Roll call", recordBallot: "Record a ballot for a deputy", recordCheckIn: "Check a deputy in",
    record: "Record", publish: "Publish a document", publishVersion: "Publish a new version", title: "Title", mediaType: "File type", size: "Size (bytes)",
    sha256: "SHA-256", access: "Who may read it", access_public: "Public", access_deputies: "Deputies and staff", access_restricted: "Restricted",
    item: "Item", countsOnly: "Secret ballot: counts only.", notVoted: "Not voted", document: "Document",
    roomTitle: "Delegation site", displayTitle: "Hall display", start: "Start broadcasting", stop: "Stop",
    idle: "Not connected", connecting: "Connecting…", live: "Live", receiving: "Receiving",
    lost: "Connection lost — retrying…", stopped: "Stopped", noDevice: "Could not open the camera or microphone",
    refused: "Refused by the server", full: "The video server is full; retrying shortly", frames: "frames decoded", siteDeputies: "This delegation's deputies",
    roomHelp: "The room's microphone reaches the hall only while the chair gives the floor to a deputy of this delegation.",
    publicNote: "Public status page.", events: "Events recorded", error: "Could not load the status",
    votesCounted: "voted", soundOn: "Sound on", soundOff: "Sound off",
    cancel: "Cancel", confirmCloseHelp: "Once closed, the sitting cannot be opened again; everything done in it is recorded.",
    // Passkeys
    passkeys: "Passkey", passkeyHelp: "A passkey (your device's fingerprint, face or PIN) confirms your ballot when the chair asks for it.",
    passkeyNone: "No passkey is registered for this account yet.", passkeyCount: "Passkeys registered",
    registerPasskey: "Register a passkey", passkeyRegistered: "Passkey registered.",
    passkeyUnsupported: "This browser does not support passkeys.",
    stepUpNote: "This vote asks you to confirm each ballot with your passkey.", stepUpOpen: "Confirm each ballot with a passkey",
    confirming: "Confirm with your passkey…", voteNeedsQuorum: "No quorum: a vote opens only with enough deputies present.", stepUpClerk: "needs your own passkey",
  },
};

/// The server's error codes (docs/protocol.md §7) as sentences.
const ERRORS = {
  vi: {
    not_permitted: "Bạn không có quyền thực hiện thao tác này.", unknown_actor: "Không có đại biểu này trong danh sách.",
    not_present: "Đại biểu chưa điểm danh.", already_present: "Đại biểu đã điểm danh.", wrong_phase: "Không thể làm việc này ở giai đoạn hiện tại của phiên họp.",
    no_such_item: "Không có nội dung này.", no_current_item: "Chưa chọn nội dung đang thảo luận.", no_such_request: "Đăng ký phát biểu này không còn.",
    already_requested: "Bạn đã đăng ký phát biểu.", no_floor: "Hiện không có ai đang phát biểu.", no_such_vote: "Không có lần biểu quyết này.",
    vote_in_progress: "Đang có một biểu quyết mở.", vote_closed: "Biểu quyết đã kết thúc.", ballot_final: "Phiếu đã ghi nhận không thể thay đổi.",
    vote_open: "Biểu quyết vẫn đang mở.", not_voided: "Chỉ biểu quyết lại được một lần biểu quyết đã hủy.", already_voided: "Biểu quyết này đã bị hủy.",
    no_such_document: "Không có tài liệu này.", no_access: "Bạn không được xem tài liệu này.", already_acknowledged: "Đã ghi nhận.",
    invalid: "Dữ liệu không hợp lệ.", already_created: "Phiên họp đã được tạo.", not_created: "Phiên họp chưa được tạo.",
    malformed_json: "Máy chủ không đọc được yêu cầu.", invalid_message: "Yêu cầu không hợp lệ.", unsupported_version: "Phiên bản ứng dụng không tương thích; xin tải lại trang.",
    invalid_command_id: "Yêu cầu không hợp lệ.", not_subscribed: "Chưa theo dõi phiên họp.", no_such_sitting: "Không có phiên họp này.",
    rate_limited: "Thao tác quá nhanh; xin chờ giây lát.", too_many_in_flight: "Quá nhiều yêu cầu đang chờ; xin chờ giây lát.",
    storage_unavailable: "Chưa ghi được; hệ thống sẽ thử lại.", unavailable: "Máy chủ tạm thời bận; xin thử lại.",
    media_disabled: "Máy chủ không phát hình.", invalid_sdp: "Kết nối hình ảnh bị từ chối.", no_such_media: "Kết nối hình ảnh không còn.",
    too_many_media: "Quá nhiều kết nối hình ảnh.", media_unavailable: "Kết nối hình ảnh tạm thời không có.", media_overloaded: "Máy chủ hình ảnh đang đầy; xin thử lại sau giây lát.",
    token_expired: "Phiên đăng nhập đã hết hạn.", token_revoked: "Bạn đã đăng xuất.", invalid_token: "Phiên đăng nhập không hợp lệ.",
    no_quorum: "Chưa đủ số đại biểu có mặt theo quy định: chưa thể mở biểu quyết.",
    budget_exhausted: "Đoàn của đại biểu đã hết thời gian phát biểu về nội dung này.",
    no_such_blob: "Tệp của tài liệu chưa được tải lên máy chủ.",
    blob_mismatch: "Loại tệp hoặc dung lượng không khớp với tệp đã tải lên.",
    step_up_required: "Biểu quyết này yêu cầu xác nhận bằng khóa truy cập.", step_up_mismatch: "Xác nhận không khớp với phiếu này; xin bấm lại.",
    step_up_used: "Xác nhận này đã được dùng; xin bấm lại.", step_up_expired: "Xác nhận đã hết hạn; xin bấm lại.",
    step_up_invalid: "Khóa truy cập không hợp lệ.", step_up_unexpected: "Yêu cầu không hợp lệ.",
    no_passkey: "Tài khoản chưa có khóa truy cập: xin đăng ký trước.", passkey_cancelled: "Chưa xác nhận bằng khóa truy cập.",
    passkey_invalid: "Khóa truy cập không hợp lệ.", passkey_exists: "Khóa truy cập này đã được đăng ký.",
    too_many_passkeys: "Tài khoản đã có đủ số khóa truy cập.", no_such_registration: "Đăng ký đã hết hạn; xin thử lại.",
    unknown: "Đã có lỗi xảy ra.",
  },
  en: {
    not_permitted: "You may not do that.", unknown_actor: "No such deputy on the roster.",
    not_present: "The deputy has not checked in.", already_present: "The deputy has already checked in.", wrong_phase: "That cannot be done at this stage of the sitting.",
    no_such_item: "No such agenda item.", no_current_item: "No agenda item has been taken up.", no_such_request: "That request to speak is gone.",
    already_requested: "You have already asked to speak.", no_floor: "Nobody has the floor.", no_such_vote: "No such vote.",
    vote_in_progress: "A vote is already open.", vote_closed: "The vote has closed.", ballot_final: "A recorded ballot cannot be changed.",
    vote_open: "The vote is still open.", not_voided: "Only a voided vote can be run again.", already_voided: "That vote was already voided.",
    no_such_document: "No such document.", no_access: "You may not read this document.", already_acknowledged: "Already recorded.",
    invalid: "That is not valid.", already_created: "The sitting already exists.", not_created: "The sitting has not been created.",
    malformed_json: "The server could not read the request.", invalid_message: "The request was not valid.", unsupported_version: "This app is out of date; please reload the page.",
    invalid_command_id: "The request was not valid.", not_subscribed: "Not following the sitting yet.", no_such_sitting: "No such sitting.",
    rate_limited: "Too fast; wait a moment.", too_many_in_flight: "Too many requests waiting; wait a moment.",
    storage_unavailable: "Not recorded yet; it will be retried.", unavailable: "The server is busy; try again.",
    media_disabled: "The server sends no video.", invalid_sdp: "The video connection was refused.", no_such_media: "The video connection is gone.",
    too_many_media: "Too many video connections.", media_unavailable: "Video is unavailable for now.", media_overloaded: "The video server is full; try again in a moment.",
    token_expired: "Your session has expired.", token_revoked: "You have logged out.", invalid_token: "Your session is not valid.",
    no_quorum: "Too few deputies are present for the quorum: the vote cannot open.",
    budget_exhausted: "The deputy's delegation has used its speaking time on this item.",
    no_such_blob: "The document's file has not been uploaded to the server.",
    blob_mismatch: "The type or size does not match the uploaded file.",
    step_up_required: "This vote asks for a passkey confirmation.", step_up_mismatch: "The confirmation was for another ballot; press again.",
    step_up_used: "That confirmation was used already; press again.", step_up_expired: "The confirmation ran out; press again.",
    step_up_invalid: "The passkey did not verify.", step_up_unexpected: "The request was not valid.",
    no_passkey: "This account has no passkey: register one first.", passkey_cancelled: "Not confirmed with the passkey.",
    passkey_invalid: "The passkey did not verify.", passkey_exists: "This passkey is registered already.",
    too_many_passkeys: "This account has as many passkeys as it may.", no_such_registration: "The registration ran out; try again.",
    unknown: "Something went wrong.",
  },
};

let lang = (typeof localStorage !== "undefined" && localStorage.getItem("lang")) || "vi";
const listeners = new Set();

export function currentLang() { return lang; }

/// The string for `key` in the current language (the key itself if it has none, so a
/// missing string shows up in screenshots instead of vanishing).
export function t(key) {
  return STRINGS[lang][key] ?? STRINGS.vi[key] ?? key;
}

/// A server error code as a sentence.
export function errorText(code) {
  return ERRORS[lang][code] ?? ERRORS[lang].unknown;
}

/// Sets the language, fills every `[data-i18n]` element and calls the page's listeners.
export function setLang(next) {
  lang = next;
  try { localStorage.setItem("lang", lang); } catch (_) { /* private mode */ }
  translateStatic();
  for (const f of listeners) f(lang);
}

export function toggleLang() { setLang(lang === "vi" ? "en" : "vi"); }

/// Calls `f` after every language change.
export function onLang(f) { listeners.add(f); }

export function translateStatic(root = document) {
  document.documentElement.lang = lang;
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nLabel)); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder)); });
}

/// The code of every known error, for the test that checks each has a sentence.
export const ERROR_CODES = Object.keys(ERRORS.en);

/// Adds a page's own strings to the tables (a page module calls it before rendering).
export function addStrings(tables) {
  for (const [l, strings] of Object.entries(tables)) Object.assign(STRINGS[l], strings);
}
