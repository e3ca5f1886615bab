//! What the index keeps of a message, and how text becomes terms.

use std::borrow::Cow;

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::Index;

/// The analyzer's name in the index.
pub(crate) const ANALYZER: &str = "hubbub";
/// Terms longer than this (in bytes) are not indexed: nobody searches for them.
const MAX_TERM_BYTES: usize = 64;

/// The fields of a message in the index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// The room id (one term).
    pub room: Field,
    /// The message id (one term): a message indexed twice replaces itself.
    pub message_id: Field,
    /// Its `seq` (indexed for `before`, fast for ordering).
    pub seq: Field,
    /// The order messages were indexed in (for the bound of an index in memory).
    pub ordinal: Field,
    /// Its text, as terms.
    pub content: Field,
    /// Its chat frame, exactly as broadcast.
    pub frame: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let fields = Fields {
        room: b.add_text_field("room", STRING),
        message_id: b.add_text_field("message_id", STRING),
        seq: b.add_u64_field("seq", INDEXED | FAST),
        ordinal: b.add_u64_field("ordinal", INDEXED),
        content: b.add_text_field("content", text),
        frame: b.add_text_field("frame", STORED),
    };
    (b.build(), fields)
}

/// Words split on everything that is not a letter or digit (any script), lower-cased,
/// accents folded (`café` is found by `cafe` and the other way round); each CJK
/// character is a word of its own (see [`spaced`]).
pub(crate) fn register_analyzer(index: &Index) {
    let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TERM_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build();
    index.tokenizers().register(ANALYZER, analyzer);
}

/// Chinese, Japanese and Korean are written without spaces: each of their characters is
/// made a word of its own (unigrams), so a search for `東京` finds `東京タワー` (both
/// characters must be there; their order is not checked).
pub(crate) fn spaced(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_cjk) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F)
}

/// The terms `text` is indexed (or searched) as.
pub(crate) fn terms(index: &Index, text: &str) -> Vec<String> {
    let Ok(mut analyzer) = index.tokenizers().get(ANALYZER).ok_or(()) else {
        return Vec::new();
    };
    let spaced = spaced(text);
    let mut stream = analyzer.token_stream(&spaced);
    let mut out = Vec::new();
    while let Some(token) = tantivy::tokenizer::TokenStream::next(&mut stream) {
        out.push(token.text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_any_script_accents_folded_cjk_by_character() {
        let (schema, _) = schema();
        let index = Index::create_in_ram(schema);
        register_analyzer(&index);
        assert_eq!(
            terms(&index, "Café crème, NAÏVE!"),
            ["cafe", "creme", "naive"]
        );
        assert_eq!(terms(&index, "Привет мир"), ["привет", "мир"]);
        assert_eq!(
            terms(&index, "東京タワーへ go"),
            ["東", "京", "タ", "ワ", "ー", "へ", "go"]
        );
        assert_eq!(terms(&index, &"x".repeat(65)), Vec::<String>::new());
        assert_eq!(terms(&index, "  ,.; "), Vec::<String>::new());
    }
}
