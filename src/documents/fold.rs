//! Vietnamese as people type it: a word matches with or without its diacritics. Text is put
//! in composed form (NFC) before it is split into words, and each word is folded to lowercase
//! ASCII letters: the tone and vowel marks dropped, `đ` to `d`. Pure; the search index uses
//! it as a token filter.

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The composed (NFC) form of `text`, so that a letter and its marks are one character.
pub fn compose(text: &str) -> String {
    text.nfc().collect()
}

/// One word folded: lowercase, without marks, `đ` as `d`.
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'đ' | 'Đ' => out.push('d'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The token filter: every token folded by [`fold`].
#[derive(Clone, Copy, Debug, Default)]
pub struct VietFold;

impl TokenFilter for VietFold {
    type Tokenizer<T: Tokenizer> = VietFoldTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> VietFoldTokenizer<T> {
        VietFoldTokenizer(tokenizer)
    }
}

/// A tokenizer whose tokens are folded.
#[derive(Clone, Debug)]
pub struct VietFoldTokenizer<T>(T);

impl<T: Tokenizer> Tokenizer for VietFoldTokenizer<T> {
    type TokenStream<'a> = VietFoldStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        VietFoldStream(self.0.token_stream(text))
    }
}

/// The folded tokens of a stream.
pub struct VietFoldStream<S>(S);

impl<S: TokenStream> TokenStream for VietFoldStream<S> {
    fn advance(&mut self) -> bool {
        if !self.0.advance() {
            return false;
        }
        let token = self.0.token_mut();
        if !token.text.is_ascii() || token.text.bytes().any(|b| b.is_ascii_uppercase()) {
            token.text = fold(&token.text);
        }
        true
    }

    fn token(&self) -> &Token {
        self.0.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_to_what_people_type_without_marks() {
        let cases = [
            ("Luật", "luat"),
            ("Chuyển", "chuyen"),
            ("đổi", "doi"),
            ("ĐỔI", "doi"),
            ("số", "so"),
            ("Nghị", "nghi"),
            ("quyết", "quyet"),
            ("Thừa", "thua"),
            ("Huế", "hue"),
            ("ngân", "ngan"),
            ("sách", "sach"),
            ("2026", "2026"),
            ("luat", "luat"),
        ];
        for (word, want) in cases {
            assert_eq!(fold(word), want, "{word}");
            // The same word typed decomposed (as some keyboards and PDFs give it).
            let decomposed: String = word.nfd().collect();
            assert_eq!(fold(&decomposed), want, "{word} decomposed");
        }
    }

    #[test]
    fn composing_first_keeps_a_word_whole() {
        let decomposed: String = "Luật Chuyển đổi số".nfd().collect();
        assert_ne!(decomposed, "Luật Chuyển đổi số");
        assert_eq!(compose(&decomposed), "Luật Chuyển đổi số");
    }
}
