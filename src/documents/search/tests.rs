use super::*;

fn entry(sitting: &str, document: u32, title: &str, text: &str) -> Entry {
    Entry {
        sitting: sitting.into(),
        document,
        version: 1,
        item: document,
        media_type: "application/pdf".into(),
        published_at: i64::from(document) * 1_000,
        title: title.into(),
        text: text.into(),
    }
}

fn index() -> SearchIndex {
    let i = SearchIndex::in_memory().expect("index");
    i.add(&[
        entry(
            "k1",
            1,
            "Tờ trình dự án Luật Chuyển đổi số",
            "Điều 1. Phạm vi điều chỉnh của Luật Chuyển đổi số.",
        ),
        entry(
            "k1",
            2,
            "Báo cáo thẩm tra",
            "Ủy ban Khoa học thẩm tra dự án luật về ngân sách.",
        ),
        entry(
            "k2",
            3,
            "Nghị quyết về kế hoạch ngân sách",
            "Quốc hội quyết nghị: ngân sách nhà nước năm 2027.",
        ),
    ])
    .expect("add");
    i
}

fn search(i: &SearchIndex, q: &str) -> Vec<u32> {
    i.search(
        &Search {
            query: q.into(),
            limit: 10,
            ..Search::default()
        },
        |_, _| true,
    )
    .expect("search")
    .into_iter()
    .map(|h| h.document)
    .collect()
}

#[test]
fn vietnamese_is_found_with_or_without_diacritics() {
    let i = index();
    assert_eq!(search(&i, "luat chuyen doi so"), vec![1]);
    assert_eq!(search(&i, "Luật Chuyển đổi số"), vec![1]);
    assert_eq!(search(&i, "LUẬT CHUYỂN ĐỔI SỐ"), vec![1]);
    assert_eq!(search(&i, "dieu chinh"), vec![1]);
    let mut budget = search(&i, "ngan sach");
    budget.sort_unstable();
    assert_eq!(budget, vec![2, 3]);
    assert!(search(&i, "hiến pháp").is_empty());
    // Every word must be there.
    assert!(search(&i, "chuyen doi ngan sach").is_empty());
}

#[test]
fn the_snippet_marks_the_words_that_matched() {
    let i = index();
    let hits = i
        .search(
            &Search {
                query: "pham vi dieu chinh".into(),
                limit: 10,
                ..Search::default()
            },
            |_, _| true,
        )
        .expect("search");
    assert_eq!(hits.len(), 1);
    let marked: Vec<&str> = hits[0]
        .snippet
        .iter()
        .filter(|p| p.hit)
        .map(|p| p.text.as_str())
        .collect();
    // "Điều" folds to "dieu" too: every word that matched is marked, as written.
    assert_eq!(marked, vec!["Điều", "Phạm", "vi", "điều", "chỉnh"]);
    let whole: String = hits[0].snippet.iter().map(|p| p.text.as_str()).collect();
    assert!(whole.contains("Phạm vi điều chỉnh của Luật"), "{whole}");
}

#[test]
fn filters_and_the_readers_access_narrow_the_hits() {
    let i = index();
    let run = |s: Search, may: &dyn Fn(&str, u32) -> bool| -> Vec<u32> {
        let mut d: Vec<u32> = i
            .search(&s, may)
            .expect("search")
            .into_iter()
            .map(|h| h.document)
            .collect();
        d.sort_unstable();
        d
    };
    let q = |sitting: Option<&str>| Search {
        query: "ngan sach".into(),
        sitting: sitting.map(str::to_owned),
        limit: 10,
        ..Search::default()
    };
    assert_eq!(run(q(Some("k2")), &|_, _| true), vec![3]);
    assert_eq!(run(q(None), &|_, d| d != 3), vec![2]);
    let mut by_item = q(None);
    by_item.item = Some(2);
    assert_eq!(run(by_item, &|_, _| true), vec![2]);
    let mut by_date = q(None);
    by_date.from = Some(2_500);
    assert_eq!(run(by_date, &|_, _| true), vec![3]);
    let mut by_type = q(None);
    by_type.media_type = Some("image/png".into());
    assert!(run(by_type, &|_, _| true).is_empty());
}

#[test]
fn a_version_indexed_again_replaces_itself() {
    let i = index();
    assert!(i.has("k1", 1, 1));
    assert!(!i.has("k1", 1, 2));
    i.add(&[entry("k1", 1, "Tờ trình (sửa)", "Hiến pháp")])
        .expect("add");
    assert_eq!(i.len(), 3);
    assert_eq!(search(&i, "hien phap"), vec![1]);
    assert!(search(&i, "luat chuyen doi so").is_empty());
    i.clear().expect("clear");
    assert!(i.is_empty());
}
