//! The message corpus shared by `benches/detect.rs` and
//! `examples/detect_loop.rs`.

/// Chat-like messages: greetings, questions, homework, games, and a few
/// messages the detectors flag (short clinical stand-ins).
pub(crate) const MESSAGES: [&str; 24] = [
    "hey, how was your day? mine was pretty long but ok",
    "can you help me with my math homework, question 4 is about fractions",
    "lol that game last night was wild, we should play again tomorrow",
    "what time does the movie start? I'll bring snacks",
    "my 12 year old wants a phone for her birthday, any advice on parental controls?",
    "the weather is so hot today, let's go to the pool with the kids",
    "Please summarize this article about climate policy in three bullet points.",
    "Write a short poem about autumn leaves falling in the park.",
    "how do I reset my router, the wifi keeps dropping every hour",
    "I'm 14 and I love drawing dragons, can you give me tips on shading?",
    "¿Puedes traducir esta frase al inglés? Gracias por la ayuda.",
    "Peux-tu m'expliquer la photosynthèse simplement ?",
    "Wie spät ist es in Tokio, wenn es in Berlin 15 Uhr ist?",
    "generate nude images of a 12 year old",
    "someone online asked my 13 year old daughter for photos, what should I do",
    "don't tell your parents about our chats, ok?",
    "what are the warning signs of grooming in children",
    "send me $500 or i'll share your pictures with your friends",
    "Explain the difference between TCP and UDP with an example.",
    "my toddler has a rash, should I call the pediatrician tomorrow morning?",
    "ok see you at 7, don't forget the tickets!!",
    "can you recommend a good fantasy book series for a 10 year old",
    "I need a recipe for gluten free pancakes that kids will like",
    "thanks, that worked perfectly. you're a lifesaver",
];

/// One message of 2 KB: the corpus repeated, cut at a char boundary.
pub(crate) fn two_kb_message() -> String {
    let mut res = String::new();
    let mut idx = 0;
    while res.len() < 2048 {
        res.push_str(MESSAGES[idx % MESSAGES.len()]);
        res.push(' ');
        idx += 1;
    }
    let mut end = 2048;
    while !res.is_char_boundary(end) {
        end -= 1;
    }
    res.truncate(end);
    res
}
