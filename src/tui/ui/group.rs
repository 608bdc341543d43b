//! The end-to-end groups' panel (F5): the group shown (its ratchet tree, and
//! with `--reveal` this epoch's values to compare with the other member),
//! then every MLS step, newest first, with its fields, epoch and one plain
//! line.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::Theme;
use super::handshake::grouped_hex;
use crate::chat::e2e::{EXPORTER_LABEL, TreeNode};
use crate::tui::app::{App, GroupShown};

/// The end-to-end groups' life (F5).
pub(crate) struct GroupsPanel<'a> {
    app: &'a App,
}

impl<'a> GroupsPanel<'a> {
    /// The steps and groups of `app`.
    pub(crate) fn new(app: &'a App) -> Self {
        Self { app }
    }
}

/// The most tree nodes drawn; a larger tree says how many more.
const MAX_NODES: usize = 64;

/// The tree, root first, each node's children under it (array order,
/// RFC 9420 Appendix C: a node's level is its count of trailing ones).
fn tree_lines(app: &App, shown: &GroupShown, theme: Theme) -> Vec<Line<'static>> {
    let nodes = &shown.view.tree;
    let mut lines = Vec::new();
    if nodes.is_empty() {
        return lines;
    }
    let width = nodes.len();
    // The root: the largest power of two below the width, minus one.
    let mut root = 1usize;
    while root * 2 <= width {
        root *= 2;
    }
    let root = root - 1;
    // (node, prefix for its line, prefix for its children)
    let mut stack = vec![(root, String::new(), String::new())];
    let mut drawn = 0;
    while let Some((x, head, rest)) = stack.pop() {
        if drawn == MAX_NODES {
            lines.push(Line::styled(format!("  … {} more nodes", width - drawn), theme.dim()));
            break;
        }
        drawn += 1;
        let Some(node) = nodes.get(x) else { continue };
        let mut spans = vec![Span::raw(format!("  {head}"))];
        match node {
            TreeNode::Leaf { node, key: Some(key), me } => {
                let name = app.leaf_name(key, *me, &shown.with);
                spans.push(Span::styled("\u{25cf} ", theme.ok()));
                spans.push(Span::raw(format!("leaf {} ", node / 2)));
                spans.push(Span::styled(name.clone(), if *me { theme.heading() } else { theme.name(&name) }));
                spans.push(Span::styled(format!(" {}", hex_short(key)), theme.dim()));
            }
            TreeNode::Leaf { node, key: None, .. } => {
                spans.push(Span::styled(format!("\u{25cb} leaf {} blank", node / 2), theme.dim()));
            }
            TreeNode::Parent { node, key: Some(_) } => {
                spans.push(Span::styled("\u{25cf} ", theme.ok()));
                spans.push(Span::raw(format!(
                    "node {node}: HPKE key (the members under it hold its private key)"
                )));
            }
            TreeNode::Parent { node, key: None } => {
                spans.push(Span::styled(format!("\u{25cb} node {node} blank"), theme.dim()));
            }
        }
        lines.push(Line::from(spans));
        let level = x.trailing_ones();
        if level > 0 {
            let half = 1usize << (level - 1);
            let right = x + half;
            let left = x - half;
            // A right child past the tree's end (a tree not yet full).
            let right_in = right < width;
            if right_in {
                stack.push((right, format!("{rest}\u{2514}\u{2500} "), format!("{rest}   ")));
            }
            let (l_head, l_rest) =
                if right_in { ("\u{251c}\u{2500} ", "\u{2502}  ") } else { ("\u{2514}\u{2500} ", "   ") };
            stack.push((left, format!("{rest}{l_head}"), format!("{rest}{l_rest}")));
        }
    }
    lines
}

/// The first bytes of an identity key, in hex.
fn hex_short(key: &[u8; 32]) -> String {
    format!("{}\u{2026}", crate::tls::crypto::hex(&key[..4]))
}

/// The epoch's values: shown with `--reveal`, else hidden as the
/// handshake's secrets are.
fn value_lines(app: &App, shown: &GroupShown, theme: Theme) -> Vec<Line<'static>> {
    let secrets = shown.view.secrets.as_ref().filter(|_| app.secrets_shown);
    let heading = if secrets.is_some() {
        "epoch values (--reveal: values shown; the other member's must be equal)"
    } else {
        "epoch values (values hidden)"
    };
    let mut lines = vec![Line::styled(heading, theme.heading())];
    let rows: [(&str, Option<&[u8]>); 3] = [
        ("epoch authenticator", secrets.map(|s| s.authenticator.as_slice())),
        ("exporter", secrets.map(|s| s.exporter.as_slice())),
        ("confirmation tag", secrets.map(|s| s.confirmation_tag.as_slice())),
    ];
    for (name, value) in rows {
        let name =
            if name == "exporter" { format!("exporter \"{EXPORTER_LABEL}\", 32") } else { name.to_owned() };
        let value = match value {
            Some(v) => Span::styled(format!(" = {}", grouped_hex(v)), theme.fg(Color::Yellow)),
            None => Span::styled(" = \u{2022}\u{2022}\u{2022}\u{2022}", theme.dim()),
        };
        lines.push(Line::from(vec![Span::raw(format!(" {name}")), value]));
    }
    lines
}

impl Widget for GroupsPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::of(self.app);
        let mut title = vec![Span::styled(" MLS groups \u{b7} F5 ", theme.heading())];
        if self.app.secrets_shown {
            title.push(super::schedule::banner(theme));
        }
        let block = Block::bordered().border_style(theme.dim()).title(Line::from(title));
        let inner = block.inner(area);
        block.render(area, buf);
        let steps = self.app.group_steps();
        let mut lines = Vec::new();
        if steps.is_empty() {
            lines.push(Line::styled(
                "no group yet: /msg NAME TEXT makes one with NAME (MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519)",
                theme.dim(),
            ));
        }
        if let Some(shown) = self.app.group_shown() {
            let members =
                shown.view.tree.iter().filter(|n| matches!(n, TreeNode::Leaf { key: Some(_), .. })).count();
            let pending = if shown.view.pending { " \u{b7} your commit waits" } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("group {} with ", shown.number), theme.heading()),
                Span::styled(shown.with.clone(), theme.name(&shown.with)),
                Span::styled(
                    format!(" \u{b7} epoch {} \u{b7} {members} members{pending}", shown.view.epoch),
                    theme.heading(),
                ),
            ]));
            if self.app.groups_known() > 1 {
                lines.push(Line::styled(
                    format!("{} groups: Tab to the panel, Up/Down picks one", self.app.groups_known()),
                    theme.dim(),
                ));
            }
            lines.push(Line::styled("ratchet tree", theme.heading()));
            lines.extend(tree_lines(self.app, shown, theme));
            lines.extend(value_lines(self.app, shown, theme));
            lines.push(Line::styled("steps, newest first", theme.heading()));
        }
        for s in steps.iter().rev() {
            let epoch = s.epoch.map_or_else(|| "no group yet".to_owned(), |e| format!("epoch {e}"));
            let style = if s.step == "Refused" { theme.bad() } else { theme.fg(Color::Cyan) };
            let who = if s.peer.is_empty() { "you".to_owned() } else { s.peer.clone() };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<11}", s.step), style),
                Span::styled(who.clone(), theme.name(&who)),
                Span::styled(format!(" \u{b7} {epoch}"), theme.dim()),
            ]));
            for (name, value) in &s.fields {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {name}: "), theme.dim()),
                    Span::raw(value.clone()),
                ]));
            }
            lines.push(Line::raw(format!("  {}", s.line)));
        }
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((self.app.group_scroll(), 0))
            .render(inner, buf);
    }
}
