//! Prevention and support texts, per language, with built-in defaults.
//!
//! The prevention (deterrence) message carries the four elements that
//! deterrence research found effective for people searching for abuse
//! material: it is illegal; it harms children; there are consequences; and
//! confidential help is available (Stop It Now). The support message points a
//! child, parent or witness to help: NCMEC's CyberTipline, Take It Down,
//! Childhelp and national child helplines. Operators override any text per
//! language in config (`[messages.prevention]`, `[messages.support]`).
//!
//! The language is the first `Accept-Language` tag the gateway has a text for
//! (or a configured header), falling back to English.

use std::collections::BTreeMap;

use childsafe_core::MessageKind;

/// The languages with built-in texts.
pub const BUILT_IN_LANGUAGES: [&str; 7] = ["en", "es", "fr", "de", "pt", "it", "nl"];

/// Prevention and support texts by language.
#[derive(Clone, Debug)]
pub struct Messages {
    prevention: BTreeMap<String, String>,
    support: BTreeMap<String, String>,
    /// Text for refusals without a prevention or support message (e.g. output blocks).
    refusal: BTreeMap<String, String>,
}

impl Default for Messages {
    fn default() -> Messages {
        let mut res = Messages {
            prevention: BTreeMap::new(),
            support: BTreeMap::new(),
            refusal: BTreeMap::new(),
        };
        for (lang, prevention, support, refusal) in DEFAULTS {
            res.prevention
                .insert(lang.to_owned(), prevention.to_owned());
            res.support.insert(lang.to_owned(), support.to_owned());
            res.refusal.insert(lang.to_owned(), refusal.to_owned());
        }
        res
    }
}

impl Messages {
    /// The defaults with operator overrides layered on top (language -> text).
    pub fn with_overrides(
        prevention: &BTreeMap<String, String>,
        support: &BTreeMap<String, String>,
        refusal: &BTreeMap<String, String>,
    ) -> Messages {
        let mut res = Messages::default();
        for (lang, text) in prevention {
            res.prevention
                .insert(lang.to_ascii_lowercase(), text.clone());
        }
        for (lang, text) in support {
            res.support.insert(lang.to_ascii_lowercase(), text.clone());
        }
        for (lang, text) in refusal {
            res.refusal.insert(lang.to_ascii_lowercase(), text.clone());
        }
        res
    }

    /// Picks the language: the first tag of `accept_language` (an
    /// `Accept-Language` value, quality values honoured) that has a
    /// prevention text, else `en`.
    pub fn language(&self, accept_language: Option<&str>) -> String {
        let Some(header) = accept_language else {
            return "en".to_owned();
        };
        let mut tags: Vec<(f32, usize, String)> = Vec::new();
        for (idx, part) in header.split(',').enumerate() {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let quality = pieces
                .find_map(|it| {
                    it.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let primary = tag
                .split(['-', '_'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if !primary.is_empty() && quality > 0.0 {
                tags.push((quality, idx, primary));
            }
        }
        tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        tags.into_iter()
            .map(|(_, _, lang)| lang)
            .find(|lang| self.prevention.contains_key(lang))
            .unwrap_or_else(|| "en".to_owned())
    }

    /// The text for `kind` (or the plain refusal when `None`) in `lang`,
    /// falling back to English.
    pub fn text(&self, kind: Option<MessageKind>, lang: &str) -> &str {
        let table = match kind {
            Some(MessageKind::Prevention) => &self.prevention,
            Some(MessageKind::Support) => &self.support,
            None => &self.refusal,
        };
        table
            .get(lang)
            .or_else(|| table.get("en"))
            .map(String::as_str)
            .unwrap_or("This request was refused.")
    }
}

/// (language, prevention, support, plain refusal).
const DEFAULTS: [(&str, &str, &str, &str); 7] = [
    (
        "en",
        "This request was refused. Sexual content involving children is illegal: creating, requesting, viewing or sharing it is a crime. \
It causes real and lasting harm to children, including when images are generated or edited by AI. \
This activity is recorded and can lead to your account being suspended and to a report to law enforcement. \
If you are worried about your thoughts or behaviour, confidential help is available: Stop It Now (www.stopitnow.org, US helpline 1-888-773-8368, UK 0808 1000 900).",
        "If a child is being harmed or you are worried about a child, help is available. \
In the US, report to NCMEC's CyberTipline (report.cybertip.org or 1-800-843-5678). \
If someone has or threatens to share sexual images of you taken when you were under 18, Take It Down can help remove them (takeitdown.ncmec.org). \
For confidential support, call or text the Childhelp National Child Abuse Hotline (1-800-422-4453). \
Outside the US, find your national child helpline at childhelplineinternational.org. In an emergency, call your local emergency number.",
        "This response was withheld because it may contain content that is not allowed.",
    ),
    (
        "es",
        "Esta solicitud ha sido rechazada. El contenido sexual que involucra a menores es ilegal: crearlo, pedirlo, verlo o compartirlo es un delito. \
Causa un daño real y duradero a los niños, también cuando las imágenes se generan o editan con IA. \
Esta actividad queda registrada y puede llevar a la suspensión de tu cuenta y a una denuncia ante las autoridades. \
Si te preocupan tus pensamientos o tu conducta, hay ayuda confidencial: Stop It Now (www.stopitnow.org).",
        "Si un niño está sufriendo daño o te preocupa un menor, hay ayuda disponible. \
En EE. UU., denuncia en la CyberTipline del NCMEC (report.cybertip.org o 1-800-843-5678). \
Si alguien tiene o amenaza con compartir imágenes sexuales tuyas de cuando tenías menos de 18 años, Take It Down puede ayudarte a retirarlas (takeitdown.ncmec.org). \
Para apoyo confidencial, llama a Childhelp (1-800-422-4453). \
Fuera de EE. UU., encuentra la línea de ayuda a la infancia de tu país en childhelplineinternational.org. En una emergencia, llama al número de emergencias local.",
        "Esta respuesta se ha retenido porque puede contener contenido no permitido.",
    ),
    (
        "fr",
        "Cette demande a été refusée. Les contenus sexuels impliquant des enfants sont illégaux : les créer, les demander, les consulter ou les partager est un crime. \
Ils causent un tort réel et durable aux enfants, y compris lorsque les images sont générées ou modifiées par l'IA. \
Cette activité est enregistrée et peut entraîner la suspension de votre compte et un signalement aux autorités. \
Si vos pensées ou votre comportement vous inquiètent, une aide confidentielle existe : Stop It Now (www.stopitnow.org).",
        "Si un enfant est en danger ou si vous vous inquiétez pour un enfant, de l'aide existe. \
Aux États-Unis, signalez-le à la CyberTipline du NCMEC (report.cybertip.org ou 1-800-843-5678). \
Si quelqu'un détient ou menace de diffuser des images sexuelles de vous prises avant vos 18 ans, Take It Down peut aider à les retirer (takeitdown.ncmec.org). \
Pour un soutien confidentiel, appelez Childhelp (1-800-422-4453). \
Ailleurs, trouvez la ligne d'écoute pour enfants de votre pays sur childhelplineinternational.org. En cas d'urgence, appelez le numéro d'urgence local.",
        "Cette réponse a été retenue car elle pourrait contenir un contenu non autorisé.",
    ),
    (
        "de",
        "Diese Anfrage wurde abgelehnt. Sexuelle Inhalte mit Kindern sind illegal: Sie zu erstellen, anzufordern, anzusehen oder zu teilen ist eine Straftat. \
Sie fügen Kindern echten und dauerhaften Schaden zu, auch wenn Bilder mit KI erzeugt oder bearbeitet werden. \
Diese Aktivität wird aufgezeichnet und kann zur Sperrung Ihres Kontos und zu einer Meldung an die Strafverfolgungsbehörden führen. \
Wenn Sie sich wegen Ihrer Gedanken oder Ihres Verhaltens Sorgen machen, gibt es vertrauliche Hilfe: „Kein Täter werden“ (www.kein-taeter-werden.de) oder Stop It Now (www.stopitnow.org).",
        "Wenn ein Kind geschädigt wird oder Sie sich um ein Kind sorgen, gibt es Hilfe. \
In den USA melden Sie es der CyberTipline des NCMEC (report.cybertip.org oder 1-800-843-5678). \
Wenn jemand sexuelle Bilder von Ihnen aus der Zeit vor Ihrem 18. Lebensjahr besitzt oder zu verbreiten droht, hilft Take It Down beim Entfernen (takeitdown.ncmec.org). \
Vertrauliche Unterstützung bietet Childhelp (1-800-422-4453). \
Außerhalb der USA finden Sie Ihr nationales Kinder- und Jugendtelefon unter childhelplineinternational.org. Im Notfall rufen Sie den örtlichen Notruf an.",
        "Diese Antwort wurde zurückgehalten, weil sie möglicherweise unzulässige Inhalte enthält.",
    ),
    (
        "pt",
        "Este pedido foi recusado. Conteúdo sexual envolvendo crianças é ilegal: criá-lo, pedi-lo, vê-lo ou partilhá-lo é crime. \
Causa danos reais e duradouros às crianças, inclusive quando as imagens são geradas ou editadas por IA. \
Esta atividade é registada e pode levar à suspensão da sua conta e a uma denúncia às autoridades. \
Se está preocupado com os seus pensamentos ou comportamento, existe ajuda confidencial: Stop It Now (www.stopitnow.org).",
        "Se uma criança está a ser prejudicada ou está preocupado com uma criança, há ajuda disponível. \
Nos EUA, denuncie na CyberTipline do NCMEC (report.cybertip.org ou 1-800-843-5678). \
Se alguém tem ou ameaça partilhar imagens sexuais suas de quando tinha menos de 18 anos, o Take It Down pode ajudar a removê-las (takeitdown.ncmec.org). \
Para apoio confidencial, ligue para a Childhelp (1-800-422-4453). \
Fora dos EUA, encontre a linha de apoio à criança do seu país em childhelplineinternational.org. Numa emergência, ligue para o número de emergência local.",
        "Esta resposta foi retida porque pode conter conteúdo não permitido.",
    ),
    (
        "it",
        "Questa richiesta è stata rifiutata. I contenuti sessuali che coinvolgono minori sono illegali: crearli, richiederli, guardarli o condividerli è un reato. \
Causano danni reali e duraturi ai bambini, anche quando le immagini sono generate o modificate con l'IA. \
Questa attività viene registrata e può portare alla sospensione del tuo account e a una segnalazione alle autorità. \
Se sei preoccupato per i tuoi pensieri o comportamenti, è disponibile un aiuto riservato: Stop It Now (www.stopitnow.org).",
        "Se un bambino subisce danni o sei preoccupato per un minore, c'è aiuto disponibile. \
Negli Stati Uniti, segnala alla CyberTipline del NCMEC (report.cybertip.org o 1-800-843-5678). \
Se qualcuno ha o minaccia di diffondere tue immagini sessuali di quando avevi meno di 18 anni, Take It Down può aiutarti a rimuoverle (takeitdown.ncmec.org). \
Per un supporto riservato, chiama Childhelp (1-800-422-4453). \
Fuori dagli Stati Uniti, trova la linea di ascolto per l'infanzia del tuo paese su childhelplineinternational.org. In caso di emergenza, chiama il numero di emergenza locale.",
        "Questa risposta è stata trattenuta perché potrebbe contenere contenuti non consentiti.",
    ),
    (
        "nl",
        "Dit verzoek is geweigerd. Seksuele inhoud met kinderen is illegaal: het maken, vragen, bekijken of delen ervan is een misdrijf. \
Het brengt kinderen echte en blijvende schade toe, ook wanneer beelden met AI worden gemaakt of bewerkt. \
Deze activiteit wordt vastgelegd en kan leiden tot blokkering van je account en een melding bij de politie. \
Maak je je zorgen over je gedachten of gedrag? Er is anonieme hulp: Stop it Now! (www.stopitnow.nl, 0800-2666436).",
        "Als een kind schade wordt aangedaan of je je zorgen maakt over een kind, is er hulp. \
In de VS meld je dit bij de CyberTipline van NCMEC (report.cybertip.org of 1-800-843-5678). \
Als iemand seksuele beelden van jou van vóór je 18e heeft of dreigt te verspreiden, kan Take It Down helpen ze te verwijderen (takeitdown.ncmec.org). \
Voor vertrouwelijke steun kun je Childhelp bellen (1-800-422-4453); in Nederland de Kindertelefoon (0800-0432). \
Elders vind je de kinderhulplijn van je land op childhelplineinternational.org. Bel in een noodgeval het lokale alarmnummer.",
        "Dit antwoord is achtergehouden omdat het mogelijk niet-toegestane inhoud bevat.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_language_has_all_three_texts() {
        let messages = Messages::default();
        for lang in BUILT_IN_LANGUAGES {
            assert_eq!(messages.language(Some(lang)), lang);
            for kind in [
                Some(MessageKind::Prevention),
                Some(MessageKind::Support),
                None,
            ] {
                assert!(messages.text(kind, lang).len() > 40, "{lang} {kind:?}");
            }
        }
    }

    #[test]
    fn prevention_has_the_four_elements_in_english() {
        let text = Messages::default()
            .text(Some(MessageKind::Prevention), "en")
            .to_owned();
        for element in [
            "illegal",
            "harm",
            "suspended",
            "confidential help",
            "Stop It Now",
        ] {
            assert!(text.contains(element), "missing {element:?}");
        }
        let support = Messages::default()
            .text(Some(MessageKind::Support), "en")
            .to_owned();
        for resource in [
            "CyberTipline",
            "Take It Down",
            "Childhelp",
            "childhelplineinternational.org",
        ] {
            assert!(support.contains(resource), "missing {resource:?}");
        }
    }

    #[test]
    fn accept_language_picks_the_best_known_language() {
        let messages = Messages::default();
        assert_eq!(messages.language(Some("fr-CH, fr;q=0.9, en;q=0.8")), "fr");
        assert_eq!(messages.language(Some("ja, de;q=0.5")), "de");
        assert_eq!(messages.language(Some("en;q=0.1, pt-BR")), "pt");
        assert_eq!(messages.language(Some("xx")), "en");
        assert_eq!(messages.language(None), "en");
        assert_eq!(messages.language(Some(";;,q=")), "en");
    }

    #[test]
    fn overrides_replace_one_language_and_keep_the_rest() {
        let mut prevention = BTreeMap::new();
        prevention.insert("EN".to_owned(), "custom".to_owned());
        let messages = Messages::with_overrides(&prevention, &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(messages.text(Some(MessageKind::Prevention), "en"), "custom");
        assert!(
            messages
                .text(Some(MessageKind::Prevention), "de")
                .contains("Kein Täter werden")
        );
        assert_eq!(messages.text(Some(MessageKind::Prevention), "zz"), "custom");
    }
}
