(function(){
  // The layout check the browser test reads: every chart laid out with visible marks (folded ones are opened for
  // the measurement and closed again before anything paints), every table drawn, and where the latest commit's
  // verdicts sit on the page (the first screen must show them).
  var closed=[].filter.call(document.querySelectorAll('details'), function(d){return !d.open;});
  closed.forEach(function(d){d.open=true;});
  var n=0, svgs=document.querySelectorAll('svg.chart');
  svgs.forEach(function(s){var r=s.getBoundingClientRect(), marks=s.querySelectorAll('.pt,.median,.band');
    var ok=r.width>0&&r.height>0&&marks.length>0;
    marks.forEach(function(m){try{var b=m.getBBox(); if(!(b.width>0||b.height>0)) ok=false;}catch(e){ok=false;}});
    if(ok) n++;});
  var t=0; document.querySelectorAll('table').forEach(function(x){if(x.rows.length>1&&x.getBoundingClientRect().height>0) t++;});
  closed.forEach(function(d){d.open=false;});
  var v=document.querySelector('table.verdicts tr:nth-child(2)'), first=document.querySelector('svg.chart');
  var y=function(e){return Math.round(e.getBoundingClientRect().bottom+window.scrollY);};
  document.body.setAttribute('data-charts-total', svgs.length);
  document.body.setAttribute('data-charts-rendered', n);
  document.body.setAttribute('data-tables-rendered', t);
  if(v) document.body.setAttribute('data-verdicts-bottom', y(v));
  if(first) document.body.setAttribute('data-first-chart-top', Math.round(first.getBoundingClientRect().top+window.scrollY));
})();
(function(){
  // The bench picker: show one bench's history (opened) or all of them.
  function pick(sel){
    var part=document.getElementById(sel.getAttribute('data-part'));
    part.querySelectorAll('details.bench').forEach(function(d){
      d.hidden=!!sel.value&&d.id!==sel.value; if(sel.value&&d.id===sel.value) d.open=true;});
  }
  document.querySelectorAll('select.bench-picker').forEach(function(sel){
    sel.addEventListener('change', function(){pick(sel);});});
  // A link to a chart or a bench (the verdicts table, the regressions list) opens the folds around it and shows
  // its bench when the picker hid it.
  function openTarget(){var t=location.hash&&document.getElementById(location.hash.slice(1));
    if(!t) return;
    var b=t.closest('details.bench');
    if(b&&b.hidden){var sel=b.closest('section').querySelector('select.bench-picker'); sel.value=b.id; pick(sel);}
    for(var d=t.closest('details');d;d=d.parentElement&&d.parentElement.closest('details')) d.open=true;
    if(t.tagName==='DETAILS') t.open=true;
    t.scrollIntoView();}
  window.addEventListener('hashchange', openTarget); openTarget();
})();
